/**
 * The API's front door, in us-east-1: AWS WAF cannot be associated with an API Gateway HTTP
 * API, so clients reach the API through a CloudFront distribution carrying a web ACL of scope
 * CLOUDFRONT (such ACLs, and CloudFront's certificates, must live in us-east-1).
 *
 *   client ──TLS 1.2+──▶ CloudFront `apiDomain` (web ACL: rate limit + AWS managed rules)
 *          ──TLS 1.2──▶ API Gateway regional custom domain `apiOriginDomain` (main stack)
 *
 * The main stack disables the API's execute-api endpoint, and its HTTP functions answer 403
 * unless the request carries `x-origin-verify`, which only this distribution adds (origin
 * custom header). Nothing here references the main stack's resources: the origin is a host
 * name from the tenant config and the header's value a dynamic reference to the us-east-1
 * replica of the main stack's secret, by its deterministic name. So no cross-region references
 * (and their custom resources) are needed; the app only orders the deployments (main first:
 * it creates the secret and its replica).
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

import { EDGE_REGION, ResolvedTenantConfig } from './config';
import { zoneAndCertificate } from './dns';
import { ORIGIN_VERIFY_HEADER, originVerifySecretName, originVerifyValues, wafRules } from './madoguchi-stack';

export { EDGE_REGION };

export interface EdgeStackProps extends StackProps {
  readonly config: ResolvedTenantConfig;
}

export class EdgeStack extends Stack {
  public readonly webAcl: wafv2.CfnWebACL;
  public readonly distribution: cloudfront.Distribution;
  public readonly logBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const name = `madoguchi-${cfg.municipalityCode}-${cfg.stage}`;
    Tags.of(this).add('madoguchi:tenant', cfg.municipalityCode);
    Tags.of(this).add('madoguchi:stage', cfg.stage);

    this.webAcl = new wafv2.CfnWebACL(this, 'ApiWebAcl', {
      name: `${name}-api`,
      description: `Madoguchi ${cfg.municipalityCode} ${cfg.stage} - in front of the HTTP API, on CloudFront`,
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: `${name}-api-waf`, sampledRequestsEnabled: true },
      rules: wafRules(`${name}-api`, cfg.wafRateLimitPer5Min),
    });

    const { zone, certificate } = zoneAndCertificate(this, 'ApiCertificate', cfg.apiDomain, cfg);

    // CloudFront standard logs are delivered with bucket ACLs: this bucket keeps ACLs enabled
    // (object writer), unlike every other bucket of the project.
    this.logBucket = new s3.Bucket(this, 'CloudFrontLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        // Same as the main stack's access logs: 400 days (≥ 1 year of access records).
        { id: 'expire-cloudfront-logs', expiration: Duration.days(400), noncurrentVersionExpiration: Duration.days(30) },
      ],
    });

    this.distribution = new cloudfront.Distribution(this, 'ApiDistribution', {
      comment: `Madoguchi ${cfg.municipalityCode} ${cfg.stage} API`,
      domainNames: [cfg.apiDomain],
      certificate,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      sslSupportMethod: cloudfront.SSLMethod.SNI,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      // Edge locations in Japan and Asia are in PriceClass_200.
      priceClass: cloudfront.PriceClass.PRICE_CLASS_200,
      webAclId: this.webAcl.attrArn,
      enableLogging: true,
      logBucket: this.logBucket,
      logFilePrefix: 'api/',
      defaultBehavior: {
        origin: new origins.HttpOrigin(cfg.apiOriginDomain, {
          protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
          originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
          // API Gateway's integration timeout is 30 s; CloudFront's default read timeout too.
          readTimeout: Duration.seconds(30),
          // Proves to the HTTP functions that the request came through this distribution (and
          // its web ACL): the main stack's secret, read from its us-east-1 replica by name at
          // deploy time (a dynamic reference, never in the template). CloudFront overwrites a
          // header of the same name sent by the viewer.
          customHeaders: { [ORIGIN_VERIFY_HEADER]: originVerifyValues(cfg, originVerifySecretName(cfg))[0] },
        }),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        // Every answer is per user (Authorization) or must be fresh: nothing is cached; all
        // viewer headers (Authorization, Origin for CORS, If-Match, …), cookies and query
        // strings reach the API. The Host header becomes apiOriginDomain (its TLS name).
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        compress: false,
      },
    });

    if (zone) {
      for (const [rid, ctor] of [['ApiA', route53.ARecord], ['ApiAaaa', route53.AaaaRecord]] as const) {
        new ctor(this, rid, {
          zone,
          recordName: cfg.apiDomain,
          target: route53.RecordTarget.fromAlias(new route53Targets.CloudFrontTarget(this.distribution)),
        });
      }
    }

    new CfnOutput(this, 'ApiUrl', { value: `https://${cfg.apiDomain}` });
    new CfnOutput(this, 'DistributionDomainName', {
      value: this.distribution.distributionDomainName,
      description: `DNS: ${cfg.apiDomain} CNAME (or Route 53 alias) to this name`,
    });
    new CfnOutput(this, 'ApiWebAclArn', { value: this.webAcl.attrArn });
  }
}

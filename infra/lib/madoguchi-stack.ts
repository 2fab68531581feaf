/**
 * One tenant deployment of Madoguchi: every function in `functions/` and what it uses.
 * Read docs/deploy.md for the parameters and the runbooks.
 */
import * as path from 'node:path';
import {
  Aws, CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, StackProps, Tags,
} from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as guardduty from 'aws-cdk-lib/aws-guardduty';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

import { EDGE_REGION, JpkiConfig, ResolvedTenantConfig } from './config';
import { zoneAndCertificate } from './dns';
import {
  BucketName, EMAIL_PROOF_HEADER, ENTRY_TOKEN_HEADER, envName, FUNCTIONS, FunctionSpec, QUARANTINE_PREFIX, QueueName, QUEUES, SESSION_TOKEN_HEADER,
} from './functions';

/** Repository root: the workspace manifest `Cargo.toml` lives there. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export interface MadoguchiStackProps extends StackProps {
  readonly config: ResolvedTenantConfig;
  /** Function catalog; default: {@link FUNCTIONS}. */
  readonly functions?: readonly FunctionSpec[];
}

/** Service principal of GuardDuty Malware Protection for S3 (assumes the plan's role). */
export const MALWARE_PROTECTION_PRINCIPAL = 'malware-protection-plan.guardduty.amazonaws.com';

/** Header CloudFront adds to every request to the origin; the HTTP functions require it. */
export const ORIGIN_VERIFY_HEADER = 'x-origin-verify';

/**
 * Name of the origin-verify secret. Deterministic, so that the edge stack (us-east-1) can read
 * the replica by name without a cross-region reference.
 */
export function originVerifySecretName(cfg: ResolvedTenantConfig): string {
  return `madoguchi/${cfg.municipalityCode}/${cfg.stage}/origin-verify`;
}

/**
 * CloudFormation dynamic references (`{{resolve:secretsmanager:…}}`) to the origin-verify
 * values, resolved at deploy time: the first is the one CloudFront sends, all are accepted.
 * `secretId` is the secret's ARN (main stack) or name (edge stack: the us-east-1 replica).
 * Without `originVerifyVersions`, the current version.
 */
export function originVerifyValues(cfg: ResolvedTenantConfig, secretId: string): string[] {
  const versions = cfg.originVerifyVersions.length ? cfg.originVerifyVersions : [undefined];
  return versions.map((versionId) => SecretValue.secretsManager(secretId, { versionId }).unsafeUnwrap());
}

/**
 * The public URL of the API, as clients (and the links the functions build) must use it: the
 * CloudFront name. The origin name answers 403 without CloudFront's header, and the
 * `execute-api` endpoint is disabled.
 */
export function apiUrl(cfg: ResolvedTenantConfig): string {
  return `https://${cfg.apiDomain}`;
}

/** The `jpki` config as esign's variables (functions/esign/src/trust.rs); only those configured. */
export function jpkiEnvironment(jpki: JpkiConfig | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [set, prefix] of [['sign', 'SIGN'], ['auth', 'AUTH']] as const) {
    const anchors = jpki?.[`${set}Anchors`];
    const crls = jpki?.[`${set}Crls`];
    const ocsp = jpki?.[`${set}OcspUrl`];
    if (anchors) env[`MADOGUCHI_JPKI_${prefix}_ANCHORS`] = anchors;
    if (crls?.length) env[`MADOGUCHI_JPKI_${prefix}_CRLS`] = crls.join(',');
    if (ocsp) env[`MADOGUCHI_JPKI_${prefix}_OCSP_URL`] = ocsp;
  }
  return env;
}

/** The card payment gateway the payment functions talk to (`MADOGUCHI_PAYMENT_GATEWAY`). */
export const PAYMENT_GATEWAY = 'stripe';

/**
 * Name prefix of the per-tenant gateway credentials in Secrets Manager: the secret of a tenant
 * is `<prefix><municipality code>` (JSON `{"secret_key": …, "webhook_secret": …}`), created by
 * the operator (docs/deploy.md), never by this stack.
 */
export function paymentSecretPrefix(cfg: ResolvedTenantConfig): string {
  return `madoguchi/${cfg.stage}/payments/`;
}

/**
 * The variables of a function with `payments` (functions/payments, functions/payment-events).
 */
export function paymentEnvironment(cfg: ResolvedTenantConfig): Record<string, string> {
  return {
    MADOGUCHI_PAYMENT_GATEWAY: PAYMENT_GATEWAY,
    MADOGUCHI_PAYMENT_SECRET_PREFIX: paymentSecretPrefix(cfg),
    MADOGUCHI_PAYMENT_ENVIRONMENT: cfg.stage,
  };
}

/** Schedules whose target functions do not exist yet: created disabled, see docs/deploy.md. */
export const SCHEDULES = [
  {
    id: 'ExpirySweep',
    // Hourly: drafts, unfinished uploads in quarantine/, stale signing sessions.
    schedule: events.Schedule.rate(Duration.hours(1)),
    target: 'submissions (to come): expires drafts and abandoned uploads the TTL does not cover',
  },
] as const;

export class MadoguchiStack extends Stack {
  public readonly table: dynamodb.Table;
  public readonly buckets: Record<BucketName, s3.Bucket>;
  public readonly queues: Record<QueueName, { queue: sqs.Queue; dlq: sqs.Queue }>;
  public readonly keys: Record<'data' | 'mac' | 'table' | 'storage' | 'audit' | 'queue' | 'backup' | 'alarm', kms.Key>;
  public readonly functions: Record<string, lambda.Function> = {};
  /** GuardDuty Malware Protection for S3 on quarantine/ of the attachments bucket (config `malwareProtection`). */
  public readonly malwareProtection?: { plan: guardduty.CfnMalwareProtectionPlan; role: iam.Role };
  public readonly api: apigw.HttpApi;
  /** Regional custom domain of the API (`apiOriginDomain`), CloudFront's origin. */
  public readonly apiDomain: apigw.DomainName;
  public readonly citizenPool: cognito.UserPool;
  public readonly staffPool: cognito.UserPool;
  public readonly alarmTopic: sns.Topic;
  /** Shared secret CloudFront sends in `x-origin-verify`; replicated to us-east-1. */
  public readonly originVerifySecret: secretsmanager.Secret;
  /** The functions this stack deploys. */
  public readonly catalog: readonly FunctionSpec[];
  /** Name prefix of the tenants' card gateway secrets (`madoguchi/<stage>/payments/`). */
  public readonly paymentSecretPrefix: string;
  private readonly cfg: ResolvedTenantConfig;

  constructor(scope: Construct, id: string, props: MadoguchiStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    this.cfg = cfg;
    this.paymentSecretPrefix = paymentSecretPrefix(cfg);
    const name = `madoguchi-${cfg.municipalityCode}-${cfg.stage}`;
    Tags.of(this).add('madoguchi:tenant', cfg.municipalityCode);
    Tags.of(this).add('madoguchi:stage', cfg.stage);

    // ---------------------------------------------------------------- keys, one per purpose
    const key = (id: string, purpose: string, extra?: Partial<kms.KeyProps>) =>
      new kms.Key(this, id, {
        alias: `alias/${name}-${purpose}`,
        description: `Madoguchi ${cfg.municipalityCode} ${cfg.stage}: ${purpose}`,
        enableKeyRotation: true,
        rotationPeriod: Duration.days(365),
        removalPolicy: RemovalPolicy.RETAIN,
        pendingWindow: Duration.days(30),
        ...extra,
      });
    this.keys = {
      data: key('DataKey', 'data'),
      // KMS rotates symmetric encryption keys only; HMAC keys are rotated by hand (docs/deploy.md).
      mac: key('MacKey', 'mac', {
        keySpec: kms.KeySpec.HMAC_256,
        keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
        enableKeyRotation: false,
        rotationPeriod: undefined,
      }),
      table: key('TableKey', 'table'),
      storage: key('StorageKey', 'storage'),
      audit: key('AuditKey', 'audit'),
      queue: key('QueueKey', 'queue'),
      backup: key('BackupKey', 'backup'),
      alarm: key('AlarmKey', 'alarm'),
    };

    // ---------------------------------------------------------------- table
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'ttl',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true, recoveryPeriodInDays: 35 },
      deletionProtection: true,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.keys.table,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // ---------------------------------------------------------------- buckets
    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      // S3 server access logging cannot deliver into a bucket encrypted with a KMS key.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(400), noncurrentVersionExpiration: Duration.days(30) },
      ],
    });
    const bucket = (id: string, logical: BucketName, lifecycleRules: s3.LifecycleRule[], extra?: Partial<s3.BucketProps>) =>
      new s3.Bucket(this, id, {
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: this.keys.storage,
        bucketKeyEnabled: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        versioned: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removalPolicy: RemovalPolicy.RETAIN,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${logical}/`,
        lifecycleRules: [
          { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
          ...lifecycleRules,
        ],
        ...extra,
      });
    this.buckets = {
      attachments: bucket('AttachmentsBucket', 'attachments', [
        // Citizens upload into quarantine/ and accepted uploads stay there (the table records
        // the decision), so current objects never expire here. A refused upload is deleted by
        // the attachments function: a delete marker, leaving the refused content as a
        // noncurrent version; that version goes after a day, then the marker.
        // Uploads never attached to an application: the ExpirySweep (to come) removes them.
        { id: 'quarantine-refused', prefix: QUARANTINE_PREFIX, noncurrentVersionExpiration: Duration.days(1), expiredObjectDeleteMarker: true },
        { id: 'noncurrent', noncurrentVersionExpiration: Duration.days(90) },
      ], {
        // Browsers upload with a presigned POST straight to S3, from the citizen SPA only; the
        // POST policy (key, size, expiry) is what authorizes an upload, CORS only lets the SPA
        // read the answer.
        cors: [{ allowedMethods: [s3.HttpMethods.POST], allowedOrigins: [cfg.spaOrigin], maxAge: 3600 }],
        // GuardDuty listens through EventBridge and turns the bucket's EventBridge delivery on
        // itself; CDK's notification resource rewrites the whole notification configuration
        // (the SQS one below) and would turn it off again unless it is part of it.
        eventBridgeEnabled: cfg.malwareProtection || undefined,
      }),
      linkage: bucket('LinkageBucket', 'linkage', [
        { id: 'inbound-to-ia', prefix: 'inbound/', transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }] },
        { id: 'expire-outbound', prefix: 'outbound/', expiration: Duration.days(90) },
        { id: 'noncurrent', noncurrentVersionExpiration: Duration.days(90) },
      ]),
      exports: bucket('ExportsBucket', 'exports', [
        // CSV exports hold personal data: short-lived by design.
        { id: 'expire-exports', expiration: Duration.days(7), noncurrentVersionExpiration: Duration.days(1) },
      ]),
      audit: bucket('AuditBucket', 'audit', [
        { id: 'audit-to-glacier', transitions: [{ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) }] },
      ], {
        encryptionKey: this.keys.audit,
        objectLockEnabled: true,
        objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(cfg.auditRetentionDays)),
      }),
      // JPKI CRLs under crl/, mirrored from J-LIS by an ops job (outside this stack) and read by
      // esign. The job replaces them: current objects never expire, old versions after 30 days.
      trust: bucket('TrustBucket', 'trust', [
        { id: 'noncurrent', noncurrentVersionExpiration: Duration.days(30) },
      ]),
    };

    // ---------------------------------------------------------------- queues
    const queue = (logical: QueueName, visibilityTimeout: Duration) => {
      const dlq = new sqs.Queue(this, `${pascal(logical)}Dlq`, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.keys.queue,
        dataKeyReuse: Duration.minutes(5),
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      const q = new sqs.Queue(this, `${pascal(logical)}Queue`, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.keys.queue,
        dataKeyReuse: Duration.minutes(5),
        enforceSSL: true,
        retentionPeriod: Duration.days(4),
        visibilityTimeout,
        deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
      });
      return { queue: q, dlq };
    };
    const catalog = props.functions ?? FUNCTIONS;
    this.catalog = catalog;
    const timeoutOf = (q: QueueName) => {
      const consumer = catalog.find((f) => f.trigger.kind === 'sqs' && f.trigger.queue === q);
      // Lambda's advice: visibility timeout ≥ 6 × the consumer's timeout.
      return consumer ? Duration.seconds(consumer.timeout.toSeconds() * 6) : Duration.minutes(5);
    };
    this.queues = Object.fromEntries(QUEUES.map((q) => [q, queue(q, timeoutOf(q))])) as MadoguchiStack['queues'];
    // Core systems drop files under inbound/; S3 tells the queue, the queue feeds linkage-inbound.
    this.buckets.linkage.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(this.queues['linkage-inbound'].queue),
      { prefix: 'inbound/' },
    );
    // Citizens upload under quarantine/; S3 tells the queue, the queue feeds attachments.
    // GuardDuty's verdict arrives later as an object tag: the tagging event goes to the same
    // queue, so an accepted file's scan is recorded (and an infected one refused) when it ends.
    const uploadEvents = cfg.malwareProtection
      ? [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_TAGGING_PUT]
      : [s3.EventType.OBJECT_CREATED];
    for (const event of uploadEvents) {
      this.buckets.attachments.addEventNotification(
        event,
        new s3n.SqsDestination(this.queues.attachments.queue),
        { prefix: QUARANTINE_PREFIX },
      );
    }

    // ---------------------------------------------------------------- malware scan of uploads
    // GuardDuty Malware Protection for S3 scans every object created under quarantine/ and tags
    // it with GuardDutyMalwareScanStatus; the attachments function refuses what is not clean.
    // Billed per GB scanned and per object: a tenant switch (malwareProtection, default on).
    if (cfg.malwareProtection) {
      const attachments = this.buckets.attachments;
      const guardDutyRule = `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*`;
      // The permissions of GuardDuty's "Create or update IAM role policy" page, with the object
      // statements narrowed to the protected prefix. Inline, so the plan (which references the
      // role) is created only once the role has them.
      const role = new iam.Role(this, 'MalwareProtectionRole', {
        assumedBy: new iam.ServicePrincipal(MALWARE_PROTECTION_PRINCIPAL),
        description: `Madoguchi ${cfg.municipalityCode} ${cfg.stage}: GuardDuty Malware Protection for S3 on ${QUARANTINE_PREFIX} of the attachments bucket`,
        inlinePolicies: {
          MalwareProtection: new iam.PolicyDocument({
            statements: [
              new iam.PolicyStatement({
                sid: 'AllowManagedRuleToSendS3EventsToGuardDuty',
                actions: ['events:PutRule', 'events:DeleteRule', 'events:PutTargets', 'events:RemoveTargets'],
                resources: [guardDutyRule],
                conditions: { StringLike: { 'events:ManagedBy': MALWARE_PROTECTION_PRINCIPAL } },
              }),
              new iam.PolicyStatement({
                sid: 'AllowGuardDutyToMonitorEventBridgeManagedRule',
                actions: ['events:DescribeRule', 'events:ListTargetsByRule'],
                resources: [guardDutyRule],
              }),
              new iam.PolicyStatement({
                sid: 'AllowPostScanTag',
                actions: ['s3:PutObjectTagging', 's3:GetObjectTagging', 's3:PutObjectVersionTagging', 's3:GetObjectVersionTagging'],
                resources: [attachments.arnForObjects(`${QUARANTINE_PREFIX}*`)],
              }),
              new iam.PolicyStatement({
                sid: 'AllowEnableS3EventBridgeEvents',
                actions: ['s3:PutBucketNotification', 's3:GetBucketNotification'],
                resources: [attachments.bucketArn],
              }),
              new iam.PolicyStatement({
                sid: 'AllowPutValidationObject',
                actions: ['s3:PutObject'],
                resources: [attachments.arnForObjects('malware-protection-resource-validation-object')],
              }),
              new iam.PolicyStatement({
                sid: 'AllowCheckBucketOwnership',
                actions: ['s3:ListBucket'],
                resources: [attachments.bucketArn],
              }),
              new iam.PolicyStatement({
                sid: 'AllowMalwareScan',
                actions: ['s3:GetObject', 's3:GetObjectVersion'],
                resources: [attachments.arnForObjects(`${QUARANTINE_PREFIX}*`)],
              }),
              new iam.PolicyStatement({
                sid: 'AllowDecryptForMalwareScan',
                actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
                resources: [this.keys.storage.keyArn],
                conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
              }),
            ],
          }),
        },
      });
      const plan = new guardduty.CfnMalwareProtectionPlan(this, 'MalwareProtectionPlan', {
        role: role.roleArn,
        protectedResource: { s3Bucket: { bucketName: attachments.bucketName, objectPrefixes: [QUARANTINE_PREFIX] } },
        actions: { tagging: { status: 'ENABLED' } },
      });
      // Both GuardDuty (EventBridge on) and CDK's notification resource (the SQS configuration,
      // EventBridge included) write the bucket's notification configuration; one after the
      // other, so that neither overwrites the other's half with a stale read.
      plan.node.addDependency(attachments.node.findChild('Notifications'));
      this.malwareProtection = { plan, role };
    }

    // ---------------------------------------------------------------- mail
    const mailDomain = cfg.mailFrom.split('@')[1];
    new ses.EmailIdentity(this, 'MailIdentity', {
      identity: ses.Identity.domain(mailDomain),
      dkimSigning: true,
    });

    // ---------------------------------------------------------------- identity
    this.citizenPool = new cognito.UserPool(this, 'CitizenPool', {
      userPoolName: `${name}-citizen`,
      selfSignUpEnabled: true,
      signInAliases: { email: true },
      autoVerify: { email: true },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      standardAttributes: { email: { required: true, mutable: true } },
      passwordPolicy: {
        minLength: 10, requireLowercase: true, requireUppercase: true, requireDigits: true, requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      // Optional TOTP: citizens cannot be made to own an authenticator app, and social
      // logins bring their own second factor.
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const citizenIdps: cognito.UserPoolClientIdentityProvider[] = [cognito.UserPoolClientIdentityProvider.COGNITO];
    const idpDeps: Construct[] = [];
    for (const p of cfg.oidcProviders) {
      const idp = new cognito.UserPoolIdentityProviderOidc(this, `Oidc${pascal(p.name)}`, {
        userPool: this.citizenPool,
        name: p.name,
        clientId: p.clientId,
        // A CloudFormation dynamic reference: the secret never appears in the template.
        clientSecret: SecretValue.secretsManager(p.clientSecretName).unsafeUnwrap(),
        issuerUrl: p.issuerUrl,
        scopes: p.scopes ?? ['openid', 'email', 'profile'],
        attributeRequestMethod: cognito.OidcAttributeRequestMethod.GET,
        attributeMapping: { email: cognito.ProviderAttribute.other('email') },
      });
      citizenIdps.push(cognito.UserPoolClientIdentityProvider.custom(p.name));
      idpDeps.push(idp);
    }
    if (cfg.google) {
      const idp = new cognito.UserPoolIdentityProviderGoogle(this, 'Google', {
        userPool: this.citizenPool,
        clientId: cfg.google.clientId,
        clientSecretValue: SecretValue.secretsManager(cfg.google.clientSecretName),
        scopes: ['openid', 'email', 'profile'],
        attributeMapping: { email: cognito.ProviderAttribute.GOOGLE_EMAIL },
      });
      citizenIdps.push(cognito.UserPoolClientIdentityProvider.GOOGLE);
      idpDeps.push(idp);
    }
    this.citizenPool.addDomain('CitizenDomain', { cognitoDomain: { domainPrefix: cfg.citizenAuthDomainPrefix } });
    const citizenClient = this.citizenPool.addClient('CitizenSpaClient', {
      userPoolClientName: 'citizen-spa',
      generateSecret: false,
      authFlows: { userSrp: true },
      preventUserExistenceErrors: true,
      supportedIdentityProviders: citizenIdps,
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${cfg.spaOrigin}/auth/callback`],
        logoutUrls: [`${cfg.spaOrigin}/`],
      },
      accessTokenValidity: Duration.minutes(60),
      idTokenValidity: Duration.minutes(60),
      refreshTokenValidity: Duration.days(30),
      enableTokenRevocation: true,
    });
    for (const d of idpDeps) citizenClient.node.addDependency(d);

    this.staffPool = new cognito.UserPool(this, 'StaffPool', {
      userPoolName: `${name}-staff`,
      // Accounts are created by a tenant administrator only.
      selfSignUpEnabled: false,
      signInAliases: { email: true, username: true },
      autoVerify: { email: true },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      standardAttributes: { email: { required: true, mutable: true } },
      customAttributes: {
        // Comma-separated departments (組織), read by shared/http/src/auth.rs (`custom:depts`).
        depts: new cognito.StringAttribute({ minLen: 0, maxLen: 2048, mutable: true }),
      },
      passwordPolicy: {
        minLength: 12, requireLowercase: true, requireUppercase: true, requireDigits: true, requireSymbols: true,
        tempPasswordValidity: Duration.days(1),
      },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Group names are the roles shared/http/src/auth.rs maps (`cognito:groups`).
    new cognito.CfnUserPoolGroup(this, 'StaffGroup', {
      userPoolId: this.staffPool.userPoolId, groupName: 'staff', precedence: 10,
      description: 'Municipal staff (職員)',
    });
    new cognito.CfnUserPoolGroup(this, 'AdminGroup', {
      userPoolId: this.staffPool.userPoolId, groupName: 'admin', precedence: 1,
      description: 'Tenant administrators (テナント管理者)',
    });
    this.staffPool.addDomain('StaffDomain', { cognitoDomain: { domainPrefix: cfg.staffAuthDomainPrefix } });
    const staffClient = this.staffPool.addClient('StaffConsoleClient', {
      userPoolClientName: 'staff-console',
      generateSecret: false,
      authFlows: { userSrp: true },
      preventUserExistenceErrors: true,
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${cfg.staffOrigin}/auth/callback`],
        logoutUrls: [`${cfg.staffOrigin}/`],
      },
      accessTokenValidity: Duration.minutes(30),
      idTokenValidity: Duration.minutes(30),
      refreshTokenValidity: Duration.hours(12),
      enableTokenRevocation: true,
    });
    const citizenIssuer = this.citizenPool.userPoolProviderUrl;
    const staffIssuer = this.staffPool.userPoolProviderUrl;

    // ---------------------------------------------------------------- operations: alarm topic
    this.keys.alarm.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `Madoguchi ${cfg.municipalityCode} ${cfg.stage} alarms`,
      masterKey: this.keys.alarm,
      enforceSSL: true,
    });
    if (cfg.alarmEmail) {
      this.alarmTopic.addSubscription(new snsSubs.EmailSubscription(cfg.alarmEmail));
    }
    const alarmAction = new cwActions.SnsAction(this.alarmTopic);
    const alarms: cloudwatch.Alarm[] = [];
    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string,
      comparison = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) => {
      const a = new cloudwatch.Alarm(this, id, {
        metric, threshold, evaluationPeriods: 1, comparisonOperator: comparison,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(alarmAction);
      a.addOkAction(alarmAction);
      alarms.push(a);
      return a;
    };

    // ---------------------------------------------------------------- origin verification
    // apiOriginDomain resolves publicly (CloudFront needs it): a client that knows it could skip
    // CloudFront and its web ACL. CloudFront adds this secret as the x-origin-verify header
    // (edge stack, from the us-east-1 replica); every HTTP function answers 403 without it.
    // Rotated by hand (docs/deploy.md, "Rotating the origin-verify secret").
    this.originVerifySecret = new secretsmanager.Secret(this, 'OriginVerifySecret', {
      secretName: originVerifySecretName(cfg),
      description: `Madoguchi ${cfg.municipalityCode} ${cfg.stage}: value of the ${ORIGIN_VERIFY_HEADER} header CloudFront sends to the API origin`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false, requireEachIncludedType: true },
      // Encrypted with the account's aws/secretsmanager key in each region: a key of this stack
      // cannot encrypt the us-east-1 replica (single-region key), and the only readers are
      // CloudFormation's dynamic references at deploy time.
      replicaRegions: [{ region: EDGE_REGION }],
    });
    const originVerify = originVerifyValues(cfg, this.originVerifySecret.secretArn).join(',');

    // ---------------------------------------------------------------- functions
    const resourceEnv = (spec: FunctionSpec): Record<string, string> => {
      const env: Record<string, string> = {
        MADOGUCHI_TENANT: cfg.municipalityCode,
        RUST_LOG: 'info',
      };
      if (spec.table) env.MADOGUCHI_TABLE = this.table.tableName;
      for (const b of spec.buckets ?? []) env[`MADOGUCHI_BUCKET_${envName(b.bucket)}`] = this.buckets[b.bucket].bucketName;
      for (const q of spec.sendsTo ?? []) {
        env[`MADOGUCHI_QUEUE_${envName(q)}_URL`] = this.queues[q].queue.queueUrl;
      }
      if (spec.keys?.includes('data')) env.MADOGUCHI_DATA_KEY_ID = this.keys.data.keyArn;
      if (spec.keys?.includes('mac')) env.MADOGUCHI_MAC_KEY_ID = this.keys.mac.keyArn;
      if (spec.mail) env.MADOGUCHI_MAIL_FROM = cfg.mailFrom;
      if (spec.readsMalwareScan) env.MADOGUCHI_MALWARE_SCAN = cfg.malwareProtection ? 'guardduty' : 'off';
      if (spec.apiUrl) env.MADOGUCHI_API_URL = apiUrl(cfg);
      // CRL and OCSP fetches go to J-LIS over the internet: the functions run outside any VPC
      // (this stack creates none), so Lambda's own network reaches it without a NAT gateway.
      if (spec.jpki) Object.assign(env, jpkiEnvironment(cfg.jpki));
      if (spec.payments) Object.assign(env, paymentEnvironment(cfg));
      if (spec.setsPaymentDeadline) env.MADOGUCHI_PAYMENT_PENDING_MINUTES = String(cfg.paymentPendingMinutes);
      // Behind CloudFront only: the accepted x-origin-verify values (a dynamic reference).
      if (spec.trigger.kind === 'http') env.MADOGUCHI_ORIGIN_VERIFY = originVerify;
      if (spec.verifiesTokens) {
        env.MADOGUCHI_CITIZEN_ISSUER = citizenIssuer;
        env.MADOGUCHI_CITIZEN_AUDIENCE = citizenClient.userPoolClientId;
        env.MADOGUCHI_STAFF_ISSUER = staffIssuer;
        env.MADOGUCHI_STAFF_AUDIENCE = staffClient.userPoolClientId;
      }
      return env;
    };

    for (const spec of catalog) {
      const id = pascal(spec.name);
      const logGroup = new logs.LogGroup(this, `${id}Logs`, {
        // Operational logs without personal data (tests in the Rust code check this):
        // three months is enough to investigate an incident; audit lives in the audit bucket.
        retention: logs.RetentionDays.THREE_MONTHS,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      // One role per function, no managed policies: logs to its own group only, plus exactly
      // what the catalog entry declares (grant() below).
      const role = new iam.Role(this, `${id}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Madoguchi ${spec.name} function`,
      });
      role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'OwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }));
      const common: lambda.FunctionOptions = {
        role,
        description: `Madoguchi ${spec.name}: ${spec.description}`,
        architecture: lambda.Architecture.ARM_64,
        memorySize: spec.memoryMiB,
        timeout: spec.timeout,
        environment: resourceEnv(spec),
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        // Active tracing: Lambda records init, invocation and the trace header crosses API
        // Gateway and SQS. Inside the functions, request ids in the JSON logs correlate.
        tracing: lambda.Tracing.ACTIVE,
        reservedConcurrentExecutions: cfg.reservedConcurrency ? spec.reservedConcurrency : undefined,
      };
      // Built by cargo-lambda from the workspace manifest when the stack is bundled (deploy);
      // tests synthesize with bundling skipped, so no Rust is compiled there.
      const fn = new RustFunction(this, id, {
        ...common,
        manifestPath: path.join(REPO_ROOT, 'Cargo.toml'),
        binaryName: spec.name,
        bundling: { architecture: lambda.Architecture.ARM_64 },
      });
      this.functions[spec.name] = fn;
      this.grant(spec, fn);

      alarm(`${id}Errors`, fn.metricErrors({ period: Duration.minutes(5) }), 1,
        `${spec.name}: function errors (see its log group, then the dead-letter queue)`);
      alarm(`${id}Throttles`, fn.metricThrottles({ period: Duration.minutes(5) }), 1,
        `${spec.name}: throttled invocations (reserved concurrency or account quota)`);
      alarm(`${id}DurationP99`, fn.metricDuration({ period: Duration.minutes(5), statistic: 'p99' }),
        spec.timeout.toMilliseconds() * 0.8, `${spec.name}: p99 duration above 80 % of the timeout`);

      if (spec.trigger.kind === 'sqs') {
        fn.addEventSource(new SqsEventSource(this.queues[spec.trigger.queue].queue, {
          batchSize: spec.trigger.batchSize,
          maxConcurrency: spec.trigger.maxConcurrency,
          reportBatchItemFailures: true,
        }));
      }
      if (spec.schedule) {
        new events.Rule(this, `${id}Schedule`, {
          description: spec.schedule.why,
          schedule: events.Schedule.expression(spec.schedule.expression),
          targets: [new eventsTargets.LambdaFunction(fn, {
            retryAttempts: 2,
            // An invocation EventBridge could not deliver lands where the function's own failed
            // messages do, under the same depth alarm.
            deadLetterQueue: spec.trigger.kind === 'sqs' ? this.queues[spec.trigger.queue].dlq : undefined,
          })],
        });
      }
    }
    for (const [logical, { dlq }] of Object.entries(this.queues)) {
      alarm(`${pascal(logical)}DlqDepth`, dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        0, `${logical}-dlq holds messages: a message failed 5 times (docs/deploy.md, incident flow)`,
        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD);
    }

    // ---------------------------------------------------------------- HTTP API
    const accessLogGroup = new logs.LogGroup(this, 'ApiAccessLogs', {
      // Who called what and when: kept as an access record for 13 months (≥ 1 year).
      retention: logs.RetentionDays.THIRTEEN_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Clients reach the API only through CloudFront (edge stack: web ACL, TLS 1.2+), which
    // forwards to this regional custom domain; the execute-api endpoint is disabled so that
    // nobody can call the API around the web ACL by its default URL.
    const { zone, certificate: originCertificate } = zoneAndCertificate(this, 'ApiOriginCertificate', cfg.apiOriginDomain, cfg);
    this.apiDomain = new apigw.DomainName(this, 'ApiDomain', {
      domainName: cfg.apiOriginDomain,
      certificate: originCertificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
    });
    if (zone) {
      for (const [id, ctor] of [['ApiOriginA', route53.ARecord], ['ApiOriginAaaa', route53.AaaaRecord]] as const) {
        new ctor(this, id, {
          zone,
          recordName: cfg.apiOriginDomain,
          target: route53.RecordTarget.fromAlias(new route53Targets.ApiGatewayv2DomainProperties(
            this.apiDomain.regionalDomainName, this.apiDomain.regionalHostedZoneId)),
        });
      }
    }
    this.api = new apigw.HttpApi(this, 'Api', {
      apiName: name,
      description: `Madoguchi ${cfg.municipalityCode} ${cfg.stage}`,
      createDefaultStage: false,
      disableExecuteApiEndpoint: true,
      corsPreflight: {
        allowOrigins: [cfg.spaOrigin, cfg.staffOrigin],
        allowMethods: [apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.PUT, apigw.CorsHttpMethod.POST,
          apigw.CorsHttpMethod.PATCH, apigw.CorsHttpMethod.DELETE, apigw.CorsHttpMethod.OPTIONS],
        allowHeaders: ['authorization', 'content-type', 'if-match', 'idempotency-key', EMAIL_PROOF_HEADER, SESSION_TOKEN_HEADER, ENTRY_TOKEN_HEADER],
        exposeHeaders: ['etag', 'location', 'x-request-id'],
        allowCredentials: false,
        maxAge: Duration.hours(1),
      },
    });
    const stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: cfg.apiRateLimit, burstLimit: cfg.apiBurstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify({
          requestId: '$context.requestId', ip: '$context.identity.sourceIp', requestTime: '$context.requestTime',
          httpMethod: '$context.httpMethod', routeKey: '$context.routeKey', status: '$context.status',
          protocol: '$context.protocol', responseLength: '$context.responseLength',
          integrationLatency: '$context.integrationLatency', latency: '$context.responseLatency',
          sub: '$context.authorizer.claims.sub', authorizerError: '$context.authorizer.error',
        })),
      },
    });
    new apigw.ApiMapping(this, 'ApiMapping', { api: this.api, domainName: this.apiDomain, stage });
    const authorizers = {
      citizen: new HttpJwtAuthorizer('CitizenAuthorizer', citizenIssuer, {
        authorizerName: 'citizen', jwtAudience: [citizenClient.userPoolClientId],
      }),
      staff: new HttpJwtAuthorizer('StaffAuthorizer', staffIssuer, {
        authorizerName: 'staff', jwtAudience: [staffClient.userPoolClientId],
      }),
    };
    for (const spec of catalog) {
      if (spec.trigger.kind !== 'http') continue;
      const integration = new HttpLambdaIntegration(`${pascal(spec.name)}Integration`, this.functions[spec.name]);
      for (const r of spec.trigger.routes) {
        this.api.addRoutes({
          path: r.path,
          methods: [apigw.HttpMethod[r.method]],
          integration,
          authorizer: r.auth === 'citizen' || r.auth === 'staff' ? authorizers[r.auth] : undefined,
        });
      }
    }
    alarm('Api5xx', stage.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }), 5,
      'API: 5xx answers (five or more in five minutes)');
    alarm('ApiLatencyP99', stage.metricLatency({ period: Duration.minutes(5), statistic: 'p99' }), 3000,
      'API: p99 latency above 3 s (design target: < 3 s at peak)');

    // ---------------------------------------------------------------- WAF
    // An HTTP API cannot carry a web ACL (WAF attaches to REST APIs, CloudFront, ALB, Cognito…):
    // the API's web ACL (scope CLOUDFRONT) sits on the distribution in the edge stack
    // (lib/edge-stack.ts, us-east-1). This regional ACL guards the two Cognito pools (sign-up,
    // sign-in, password reset).
    const webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: `${name}-waf`, sampledRequestsEnabled: true },
      rules: wafRules(name, cfg.wafRateLimitPer5Min),
    });
    for (const [id, pool] of [['Citizen', this.citizenPool], ['Staff', this.staffPool]] as const) {
      new wafv2.CfnWebACLAssociation(this, `${id}PoolWaf`, { resourceArn: pool.userPoolArn, webAclArn: webAcl.attrArn });
    }

    // ---------------------------------------------------------------- schedules
    for (const s of SCHEDULES) {
      new events.Rule(this, `${s.id}Schedule`, {
        description: `Target to come — ${s.target}. Enable once the function exists.`,
        schedule: s.schedule,
        enabled: false,
      });
    }

    // ---------------------------------------------------------------- backup
    const vault = new backup.BackupVault(this, 'BackupVault', {
      backupVaultName: `${name}-vault`,
      encryptionKey: this.keys.backup,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const plan = new backup.BackupPlan(this, 'BackupPlan', { backupPlanName: `${name}-daily`, backupVault: vault });
    plan.addRule(new backup.BackupPlanRule({
      ruleName: 'daily-35-days',
      // 03:00 JST.
      scheduleExpression: events.Schedule.cron({ minute: '0', hour: '18' }),
      deleteAfter: Duration.days(35),
      copyActions: cfg.backupCopyVaultArn
        ? [{ destinationBackupVault: backup.BackupVault.fromBackupVaultArn(this, 'CopyVault', cfg.backupCopyVaultArn), deleteAfter: Duration.days(35) }]
        : undefined,
    }));
    plan.addSelection('Table', { resources: [backup.BackupResource.fromDynamoDbTable(this.table)] });

    // ---------------------------------------------------------------- dashboard
    const dash = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: name });
    dash.addWidgets(
      new cloudwatch.GraphWidget({ title: 'API requests and errors', width: 12, left: [stage.metricCount(), stage.metricClientError(), stage.metricServerError()] }),
      new cloudwatch.GraphWidget({ title: 'API latency p99 (ms)', width: 12, left: [stage.metricLatency({ statistic: 'p99' }), stage.metricIntegrationLatency({ statistic: 'p99' })] }),
    );
    for (const spec of catalog) {
      const fn = this.functions[spec.name];
      dash.addWidgets(
        new cloudwatch.GraphWidget({ title: `${spec.name}: invocations, errors, throttles`, width: 12, left: [fn.metricInvocations(), fn.metricErrors(), fn.metricThrottles()] }),
        new cloudwatch.GraphWidget({ title: `${spec.name}: duration p50/p99 (ms)`, width: 12, left: [fn.metricDuration({ statistic: 'p50' }), fn.metricDuration({ statistic: 'p99' })] }),
      );
    }
    dash.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queues: visible messages', width: 12,
        left: Object.values(this.queues).flatMap(({ queue: q, dlq }) => [q.metricApproximateNumberOfMessagesVisible(), dlq.metricApproximateNumberOfMessagesVisible()]),
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 12, alarms }),
    );

    // ---------------------------------------------------------------- outputs
    new CfnOutput(this, 'ApiUrl', { value: apiUrl(cfg), description: 'Public API URL (CloudFront, edge stack)' });
    new CfnOutput(this, 'ApiOriginTarget', {
      value: this.apiDomain.regionalDomainName,
      description: `DNS: ${cfg.apiOriginDomain} CNAME (or Route 53 alias) to this name`,
    });
    new CfnOutput(this, 'CitizenIssuer', { value: citizenIssuer });
    new CfnOutput(this, 'CitizenClientId', { value: citizenClient.userPoolClientId });
    new CfnOutput(this, 'StaffIssuer', { value: staffIssuer });
    new CfnOutput(this, 'StaffClientId', { value: staffClient.userPoolClientId });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'LinkageBucketName', { value: this.buckets.linkage.bucketName });
    new CfnOutput(this, 'TrustBucketName', {
      value: this.buckets.trust.bucketName,
      description: 'JPKI CRLs for esign: the ops job writes them under crl/ (jpki.*Crls: blob:crl/<key>)',
    });
    if (this.malwareProtection) {
      new CfnOutput(this, 'MalwareProtectionPlanId', {
        value: this.malwareProtection.plan.attrMalwareProtectionPlanId,
        description: 'GuardDuty Malware Protection for S3 plan of the attachments bucket (aws guardduty get-malware-protection-plan)',
      });
    }
    new CfnOutput(this, 'OriginVerifySecretName', {
      value: originVerifySecretName(cfg),
      description: `Secret of the ${ORIGIN_VERIFY_HEADER} header (replica in ${EDGE_REGION}); rotation: docs/deploy.md`,
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  /** Least privilege: exactly what the function's catalog entry declares, no wildcards. */
  private grant(spec: FunctionSpec, fn: lambda.Function): void {
    const allow = (sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>) =>
      fn.addToRolePolicy(new iam.PolicyStatement({ sid, actions, resources, conditions }));
    const via = (service: string) => ({ StringEquals: { 'kms:ViaService': `${service}.${Aws.REGION}.amazonaws.com` } });
    if (spec.table) {
      // The operations shared/aws/src/item.rs performs; TransactWriteItems is authorized
      // per contained Put/Update/Delete/ConditionCheck.
      const actions = spec.table === 'readwrite'
        ? ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DescribeTable']
        : ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DescribeTable'];
      allow('Table', actions, [this.table.tableArn, `${this.table.tableArn}/index/gsi1`]);
      allow('TableKey', spec.table === 'readwrite' ? ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'] : ['kms:Decrypt', 'kms:DescribeKey'],
        [this.keys.table.keyArn], via('dynamodb'));
    }
    (spec.buckets ?? []).forEach((b, i) => {
      const bucket = this.buckets[b.bucket];
      const key = b.bucket === 'audit' ? this.keys.audit : this.keys.storage;
      if (b.read?.length) {
        allow(`Read${pascal(b.bucket)}${i}`, ['s3:GetObject', 's3:GetObjectVersion'], b.read.map((p) => bucket.arnForObjects(`${p}*`)));
        allow(`Read${pascal(b.bucket)}Key${i}`, ['kms:Decrypt'], [key.keyArn], via('s3'));
      }
      if (b.write?.length) {
        allow(`Write${pascal(b.bucket)}${i}`, ['s3:PutObject'], b.write.map((p) => bucket.arnForObjects(`${p}*`)));
        allow(`Write${pascal(b.bucket)}Key${i}`, ['kms:GenerateDataKey', 'kms:Decrypt'], [key.keyArn], via('s3'));
      }
      if (b.readTags?.length) {
        allow(`ReadTags${pascal(b.bucket)}${i}`, ['s3:GetObjectTagging', 's3:GetObjectVersionTagging'], b.readTags.map((p) => bucket.arnForObjects(`${p}*`)));
      }
      if (b.delete?.length) {
        // Without a version id: a delete marker (versioned bucket); lifecycle removes the rest.
        allow(`Delete${pascal(b.bucket)}${i}`, ['s3:DeleteObject'], b.delete.map((p) => bucket.arnForObjects(`${p}*`)));
      }
    });
    for (const q of spec.sendsTo ?? []) {
      allow(`Send${pascal(q)}`, ['sqs:SendMessage'], [this.queues[q].queue.queueArn]);
      allow(`Send${pascal(q)}Key`, ['kms:GenerateDataKey', 'kms:Decrypt'], [this.keys.queue.keyArn], via('sqs'));
    }
    if (spec.keys?.includes('data')) {
      // Envelope encryption: new data keys and unwrapping them; the encryption context binds
      // each key to its tenant and purpose (shared/aws/src/keys.rs).
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [this.keys.data.keyArn] }));
    }
    if (spec.keys?.includes('mac')) {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['kms:GenerateMac'], resources: [this.keys.mac.keyArn] }));
    }
    if (spec.payments) {
      // The tenants' gateway credentials, created by the operator (docs/deploy.md). Secrets
      // Manager appends a random 6-character suffix to a secret's ARN, hence the `*` after the
      // prefix. Encrypted with the account's aws/secretsmanager key, whose policy lets
      // Secrets Manager decrypt for any principal of the account allowed GetSecretValue: no
      // KMS grant here.
      allow('PaymentSecrets', ['secretsmanager:GetSecretValue'],
        [`arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${this.paymentSecretPrefix}*`]);
    }
    if (spec.mail) {
      fn.addToRolePolicy(new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [`arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:identity/${this.cfg.mailFrom.split('@')[1]}`],
        conditions: { StringEquals: { 'ses:FromAddress': this.cfg.mailFrom } },
      }));
    }
  }
}

/** Managed rule groups and a per-IP rate limit; shared by every web ACL of the stack. */
export function wafRules(name: string, ratePer5Min: number): wafv2.CfnWebACL.RuleProperty[] {
  const visibility = (metric: string) => ({ cloudWatchMetricsEnabled: true, metricName: `${name}-${metric}`, sampledRequestsEnabled: true });
  const managed = (priority: number, ruleName: string) => ({
    name: ruleName,
    priority,
    overrideAction: { none: {} },
    statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: ruleName } },
    visibilityConfig: visibility(ruleName),
  });
  return [
    {
      name: 'rate-limit-per-ip',
      priority: 0,
      action: { block: {} },
      statement: { rateBasedStatement: { limit: ratePer5Min, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
      visibilityConfig: visibility('rate-limit'),
    },
    managed(1, 'AWSManagedRulesAmazonIpReputationList'),
    managed(2, 'AWSManagedRulesCommonRuleSet'),
    managed(3, 'AWSManagedRulesKnownBadInputsRuleSet'),
  ];
}

/** `linkage-inbound` → `LinkageInbound`. */
export function pascal(s: string): string {
  return s.split(/[^A-Za-z0-9]/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

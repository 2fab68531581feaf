/**
 * The tenant's hosted zone (if the config names one) and a DNS-validated certificate, as both
 * stacks need them: the main stack for the API's regional origin name, the edge stack (in
 * us-east-1) for the public name CloudFront serves.
 */
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { ResolvedTenantConfig } from './config';

export function zoneAndCertificate(
  scope: Construct,
  certificateId: string,
  domainName: string,
  cfg: ResolvedTenantConfig,
): { zone?: route53.IHostedZone; certificate: acm.Certificate } {
  const zone = cfg.hostedZone
    ? route53.HostedZone.fromHostedZoneAttributes(scope, 'Zone', { hostedZoneId: cfg.hostedZone.id, zoneName: cfg.hostedZone.name })
    : undefined;
  const certificate = new acm.Certificate(scope, certificateId, {
    domainName,
    // Without a hosted zone, CloudFormation waits until the CNAME shown in the stack events exists.
    validation: acm.CertificateValidation.fromDns(zone),
  });
  return { zone, certificate };
}

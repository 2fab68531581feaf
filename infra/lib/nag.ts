/**
 * cdk-nag acknowledgements: every finding of the AwsSolutions and Serverless packs on this
 * stack that we accept on purpose, each with its reason. Keep this list short; each entry
 * names the exact finding (rule and, for IAM, the action or resource), never a whole rule.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

import { EdgeStack } from './edge-stack';
import { FunctionSpec, HttpRoute, QUARANTINE_PREFIX } from './functions';
import { MadoguchiStack, SCHEDULES } from './madoguchi-stack';

export interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement applied, for the report and the tests. */
export function acknowledgements(stack: MadoguchiStack, catalog: readonly FunctionSpec[] = stack.catalog): Acknowledgement[] {
  const out: Acknowledgement[] = [];
  const ack = (scope: IConstruct, id: string, reason: string) => {
    Validations.of(scope).acknowledge({ id, reason });
    out.push({ path: scope.node.path, id, reason });
  };
  const child = (path: string) => stack.node.findChild(path);

  // Citizen pool MFA.
  ack(stack.citizenPool, 'AwsSolutions::AwsSolutions-COG2',
    'Citizens cannot be required to own an authenticator: TOTP MFA is optional for them, social logins bring their provider\'s own factor, and threat protection (Plus tier, full function) blocks risky sign-ins. The staff pool requires MFA.');

  for (const spec of catalog) {
    const fn = stack.functions[spec.name];
    // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
    ack(fn.role!.node.findChild('DefaultPolicy'), 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions (the only wildcard in the role).');
    for (const b of spec.buckets ?? []) {
      const logical = stack.getLogicalId(stack.buckets[b.bucket].node.defaultChild as never);
      for (const p of new Set([...(b.read ?? []), ...(b.write ?? []), ...(b.readTags ?? []), ...(b.delete ?? [])])) {
        ack(fn.role!.node.findChild('DefaultPolicy'), `AwsSolutions::AwsSolutions-IAM5[Resource::<${logical}.Arn>/${p}*]`,
          `Prefix grant: ${spec.name} may only touch objects under ${p} of the ${b.bucket} bucket; object keys below it are not known in advance.`);
      }
    }
    if (spec.payments) {
      const prefix = stack.paymentSecretPrefix;
      ack(fn.role!.node.findChild('DefaultPolicy'), `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${prefix}*]`,
        `The card gateway's credentials, one Secrets Manager secret per tenant named ${prefix}<tenant code>, created by the municipality's operator (never by the stack): ${spec.name} may read those secrets only (GetSecretValue, no other action). Secrets Manager appends a random 6-character suffix to each secret's ARN, hence the wildcard after the name.`);
    }
    if (spec.trigger.kind === 'http') {
      ack(fn, 'Serverless::Serverless-LambdaDLQ',
        'Invoked synchronously by API Gateway: the caller receives the error; there is no asynchronous event to keep.');
      for (const r of spec.trigger.routes) {
        if (r.auth === 'citizen' || r.auth === 'staff') continue;
        const routeId = `${r.method}--${r.path.replace(/^\//, '').replace(/\//g, '--')}`;
        const route = stack.api.node.findChild(routeId);
        ack(route, 'AwsSolutions::AwsSolutions-APIG4', routeReason(r));
      }
    } else {
      ack(fn, 'Serverless::Serverless-LambdaDLQ',
        'Invoked by an SQS event source mapping: failed messages go to the queue\'s own dead-letter queue (redrive after 5 receives), not to a function DLQ.');
      const esm = fn.node.children.find((c) => c.node.id.startsWith('SqsEventSource'));
      if (esm) {
        ack(esm, 'Serverless::Serverless-LambdaEventSourceMappingDestination',
          'SQS event sources do not support on-failure destinations; the source queue\'s redrive policy sends failures to its dead-letter queue, which is alarmed.');
      }
    }
  }
  for (const [logical, { dlq }] of Object.entries(stack.queues)) {
    ack(dlq, 'Serverless::Serverless-SQSRedrivePolicy', `${logical}-dlq is itself the dead-letter queue of ${logical}; its depth is alarmed (> 0).`);
  }
  for (const s of SCHEDULES) {
    ack(child(`${s.id}Schedule`), 'Serverless::Serverless-EventBusDLQ',
      `Disabled schedule without a target yet (${s.target}); the target gets a dead-letter queue when it is added.`);
  }
  const emailSub = stack.alarmTopic.node.children.find((c) => c.node.id.includes('@'));
  if (emailSub) {
    ack(emailSub, 'Serverless::Serverless-SNSRedrivePolicy',
      'E-mail subscription of the alarm topic: undeliverable alarm mails show in the topic\'s NumberOfNotificationsFailed metric; a dead-letter queue would hold mails no one reads.');
  }
  ack(stack.originVerifySecret, 'AwsSolutions::AwsSolutions-SMG4',
    'The origin-verify secret is rotated by hand (docs/deploy.md): its consumers read it through CloudFormation dynamic references, resolved only when a deployment names new version ids, so a rotation Lambda could not make CloudFront and the functions pick up a new value; the runbook puts a new value, deploys with old and new accepted, then drops the old.');
  if (stack.malwareProtection) {
    const { role } = stack.malwareProtection;
    const attachments = stack.getLogicalId(stack.buckets.attachments.node.defaultChild as never);
    ack(role, 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*]',
      'GuardDuty Malware Protection for S3 creates and manages its own EventBridge rule, whose name carries a suffix GuardDuty chooses; the pattern is the one GuardDuty documents, and creating or changing rules is further limited to rules managed by GuardDuty (events:ManagedBy).');
    ack(role, `AwsSolutions::AwsSolutions-IAM5[Resource::<${attachments}.Arn>/${QUARANTINE_PREFIX}*]`,
      `GuardDuty scans and tags every object created under ${QUARANTINE_PREFIX} of the attachments bucket (the plan's only prefix); object keys below it are not known in advance.`);
  }
  // Constructs CDK adds for us.
  const notifications = stack.node.children.find((c) => c.node.id.startsWith('BucketNotificationsHandler'));
  if (notifications) {
    const role = notifications.node.findChild('Role');
    ack(role, 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK\'s BucketNotificationsHandler (deploy-time custom resource that configures the S3 → SQS notifications: inbound/ of the linkage bucket, quarantine/ of the attachments bucket); it only writes its own logs.');
  }
  const backupRole = child('BackupPlan').node.findChild('Table').node.findChild('Role');
  ack(backupRole, 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
    'AWS Backup\'s service role uses the AWS-maintained backup policy, as AWS Backup documents; it follows new resource types without our changes.');
  return out;
}

/** Why a route without a gateway JWT authorizer is fine. */
export function routeReason(r: HttpRoute): string {
  switch (r.auth) {
    case 'none':
      return `${r.method} ${r.path} is public by design: ${r.why ?? 'no reason given'}.`;
    case 'function':
      if (r.why) return `${r.method} ${r.path} has no gateway authorizer: ${r.why}.`;
      return `${r.method} ${r.path} accepts tokens from both the citizen and the staff pool; an HTTP API JWT authorizer trusts one issuer, so the function verifies the JWT itself (shared/http/src/auth.rs, issuer and audience from its environment).`;
    case 'citizen-or-proof':
      return `${r.method} ${r.path} accepts a citizen-pool JWT or an e-mail verification proof token that the function issued itself (citizens may apply without an account); the gateway's JWT authorizer cannot check the proof token, so the function verifies either one and answers 401 to anything else.`;
    default:
      throw new Error(`${r.method} ${r.path} has a gateway authorizer (${r.auth}); nothing to acknowledge`);
  }
}

/** Applies {@link acknowledgements} and records them on the stack for the tests. */
export function acknowledgeFindings(stack: MadoguchiStack): Acknowledgement[] {
  const list = acknowledgements(stack);
  ACKNOWLEDGED.set(stack, list);
  return list;
}

/** Acknowledgements of the edge stack (CloudFront + web ACL, us-east-1). */
export function edgeAcknowledgements(edge: EdgeStack): Acknowledgement[] {
  const out: Acknowledgement[] = [];
  const ack = (scope: IConstruct, id: string, reason: string) => {
    Validations.of(scope).acknowledge({ id, reason });
    out.push({ path: scope.node.path, id, reason });
  };
  ack(edge.logBucket, 'AwsSolutions::AwsSolutions-S1',
    'This bucket is itself a log destination (CloudFront standard logs of the API distribution); logging access to it would need yet another log bucket. It blocks public access, allows TLS only and only CloudFront\'s log delivery writes to it.');
  ack(edge.distribution, 'AwsSolutions::AwsSolutions-CFR1',
    'No geo restriction on purpose: residents abroad (転出予定者, overseas residents) and staff on business trips use the API; the web ACL (IP reputation list, common and known-bad-input rules, per-IP rate limit) and the JWT authorizers protect it instead.');
  return out;
}

export function acknowledgeEdgeFindings(edge: EdgeStack): Acknowledgement[] {
  const list = edgeAcknowledgements(edge);
  ACKNOWLEDGED.set(edge, list);
  return list;
}

export const ACKNOWLEDGED = new WeakMap<Stack, Acknowledgement[]>();

/**
 * Citizen applications: the form builder's routes, the submissions routes and their
 * credentials, the attachments pipeline (presigned POST → quarantine/ → S3 notification → SQS →
 * attachments, GuardDuty Malware Protection tagging the same objects), notify, and who may do
 * what with the attachments bucket. Synthesized once with the example tenant (malware protection
 * on) and once with it switched off.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';

import { FUNCTIONS, HttpRoute, QUEUES } from '../lib/functions';
import { ACKNOWLEDGED } from '../lib/nag';
import { MadoguchiStack } from '../lib/madoguchi-stack';
import { exampleConfig, resources, synth, Synth } from './helpers';

type Statement = Record<string, any>;

const cfg = exampleConfig();
let s: Synth;
let t: Template;
let off: Synth;

before(() => {
  s = synth();
  t = s.template;
  off = synth({ config: exampleConfig({ malwareProtection: false }) });
});
after(() => {
  for (const x of [s, off]) fs.rmSync(x.outdir, { recursive: true, force: true });
});

const idIn = (stack: MadoguchiStack, c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const idOf = (c: { node: { defaultChild?: unknown } }) => idIn(s.stack, c);
const ref = (id: string) => ({ Ref: id });
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
/** `<bucket ARN>/<suffix>` as CDK renders `arnForObjects`. */
const objects = (bucketId: string, suffix: string) => ({ 'Fn::Join': ['', [arn(bucketId), `/${suffix}`]] });
const actions = (st: Statement) => [st.Action].flat() as string[];
const resourcesOf = (st: Statement) => [st.Resource].flat();

/** Every statement of the function's role (identity policies), checked to have no managed policy. */
function statementsOf(fnName: string, x: Synth = s): Statement[] {
  const roleId = idIn(x.stack, x.stack.functions[fnName].role!);
  const role = x.template.toJSON().Resources[roleId];
  assert.equal(role.Properties.ManagedPolicyArns, undefined, `${fnName}: no managed policies`);
  assert.equal(role.Properties.Policies, undefined, `${fnName}: no inline policies outside the default policy`);
  return Object.values(resources(x.template, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties!.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId))))
    .flatMap((p) => p.Properties!.PolicyDocument.Statement as Statement[]);
}
const s3Statements = (fnName: string) => statementsOf(fnName).filter((st) => actions(st).some((a) => a.startsWith('s3:')));

describe('routes', () => {
  const routesOf = (name: string) => {
    const spec = FUNCTIONS.find((f) => f.name === name)!;
    assert.equal(spec.trigger.kind, 'http');
    return (spec.trigger as { routes: HttpRoute[] }).routes.map((r) => `${r.method} ${r.path} ${r.auth}`).sort();
  };
  const routeKeys = () => new Map(Object.values(resources(t, 'AWS::ApiGatewayV2::Route'))
    .map((r) => [r.Properties!.RouteKey as string, r.Properties!] as const));

  test('forms: the published definition is public, the builder is staff only, /healthz and /v1/me stay', () => {
    assert.deepEqual(routesOf('forms'), [
      'GET /healthz none',
      'GET /v1/me function',
      'GET /v1/tenants/{tenant}/forms/{slug} none',
      'GET /v1/tenants/{tenant}/manage/forms staff',
      'GET /v1/tenants/{tenant}/manage/forms/{slug} staff',
      'GET /v1/tenants/{tenant}/manage/forms/{slug}/versions/{version} staff',
      'POST /v1/tenants/{tenant}/manage/forms staff',
      'POST /v1/tenants/{tenant}/manage/forms/{slug}/archive staff',
      'POST /v1/tenants/{tenant}/manage/forms/{slug}/close staff',
      'POST /v1/tenants/{tenant}/manage/forms/{slug}/publish staff',
      'PUT /v1/tenants/{tenant}/manage/forms/{slug} staff',
    ]);
    assert.ok(!routeKeys().has('PUT /v1/tenants/{tenant}/forms/{slug}'), 'the old staff PUT on the public path is gone');
  });

  test('submissions: e-mail verification public, everything else a citizen JWT or a proof token checked by the function', () => {
    assert.deepEqual(routesOf('submissions'), [
      'DELETE /v1/tenants/{tenant}/forms/{slug}/draft citizen-or-proof',
      'GET /v1/tenants/{tenant}/forms/{slug}/attachments/{id} citizen-or-proof',
      'GET /v1/tenants/{tenant}/forms/{slug}/draft citizen-or-proof',
      'GET /v1/tenants/{tenant}/my/applications citizen-or-proof',
      'GET /v1/tenants/{tenant}/my/applications/{id} citizen-or-proof',
      'POST /v1/tenants/{tenant}/forms/{slug}/applications citizen-or-proof',
      'POST /v1/tenants/{tenant}/forms/{slug}/attachments citizen-or-proof',
      'POST /v1/tenants/{tenant}/forms/{slug}/confirm citizen-or-proof',
      'POST /v1/tenants/{tenant}/forms/{slug}/email-verifications none',
      'POST /v1/tenants/{tenant}/forms/{slug}/email-verifications/{id}/confirm none',
      'POST /v1/tenants/{tenant}/forms/{slug}/signing-sessions citizen-or-proof',
      'POST /v1/tenants/{tenant}/my/applications/{id}/withdraw citizen-or-proof',
      'PUT /v1/tenants/{tenant}/forms/{slug}/draft citizen-or-proof',
      'PUT /v1/tenants/{tenant}/my/applications/{id}/correction citizen-or-proof',
    ]);
  });

  test('staff: every route behind the staff JWT authorizer, all under /v1/tenants/{tenant}/staff/', () => {
    const routes = routesOf('staff');
    assert.equal(routes.length, 23);
    for (const r of routes) {
      assert.match(r, /^(GET|PUT|POST) \/v1\/tenants\/\{tenant\}\/staff\/\S+ staff$/);
    }
  });

  test('in the template: staff routes behind the staff JWT authorizer; proof-token routes have no gateway authorizer but reach a function that verifies tokens', () => {
    const keys = routeKeys();
    const authorizers = resources(t, 'AWS::ApiGatewayV2::Authorizer');
    const integrations = resources(t, 'AWS::ApiGatewayV2::Integration');
    const fnOf = (route: Record<string, any>) => {
      const integrationId = (route.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string };
      return JSON.stringify(integrations[integrationId.Ref].Properties!.IntegrationUri);
    };
    for (const spec of FUNCTIONS) {
      if (spec.trigger.kind !== 'http') continue;
      for (const r of spec.trigger.routes) {
        const route = keys.get(`${r.method} ${r.path}`);
        assert.ok(route, `${r.method} ${r.path}`);
        assert.ok(fnOf(route).includes(idOf(s.stack.functions[spec.name])), `${r.method} ${r.path} → ${spec.name}`);
        if (r.auth === 'staff' || r.auth === 'citizen') {
          assert.equal(authorizers[route.AuthorizerId.Ref].Properties!.Name, r.auth, `${r.method} ${r.path}`);
        } else {
          assert.equal(route.AuthorizationType, 'NONE', `${r.method} ${r.path}`);
        }
        if (r.auth === 'citizen-or-proof' || r.auth === 'function') {
          assert.ok(spec.verifiesTokens, `${spec.name} must verify tokens itself for ${r.method} ${r.path}`);
        }
      }
    }
    assert.equal(keys.get('POST /v1/tenants/{tenant}/manage/forms/{slug}/publish')!.AuthorizationType, 'JWT');
  });

  test('CORS of the API lets the SPA send the proof token (X-Email-Proof) and the Idempotency-Key', () => {
    const api = Object.values(resources(t, 'AWS::ApiGatewayV2::Api'))[0].Properties!;
    for (const h of ['authorization', 'x-email-proof', 'idempotency-key', 'content-type']) {
      assert.ok((api.CorsConfiguration.AllowHeaders as string[]).includes(h), h);
    }
    assert.ok((api.CorsConfiguration.AllowMethods as string[]).includes('DELETE'), 'DELETE …/draft');
  });

  test('each route without a gateway authorizer is acknowledged (cdk-nag APIG4) with its own reason', () => {
    const acks = ACKNOWLEDGED.get(s.stack)!.filter((a) => a.id === 'AwsSolutions::AwsSolutions-APIG4');
    const open = FUNCTIONS.flatMap((f) => (f.trigger.kind === 'http' ? f.trigger.routes : []))
      .filter((r) => r.auth !== 'staff' && r.auth !== 'citizen');
    assert.equal(acks.length, open.length);
    for (const r of open) {
      const a = acks.find((x) => x.reason.startsWith(`${r.method} ${r.path} `));
      assert.ok(a, `${r.method} ${r.path} acknowledged`);
      if (r.auth === 'citizen-or-proof') assert.match(a!.reason, /proof token/);
      if (r.auth === 'none') assert.ok(r.why && a!.reason.includes(r.why), `${r.method} ${r.path}: the route's why`);
    }
  });
});

describe('attachments bucket: uploads, notification, CORS', () => {
  test('objects created or tagged (GuardDuty verdicts) under quarantine/ notify the attachments queue (and the bucket keeps EventBridge on for GuardDuty)', () => {
    const bucketId = idOf(s.stack.buckets.attachments);
    const custom = Object.values(resources(t, 'Custom::S3BucketNotifications'))
      .filter((r) => JSON.stringify(r.Properties!.BucketName) === JSON.stringify(ref(bucketId)));
    assert.equal(custom.length, 1);
    assert.deepEqual(custom[0].Properties!.NotificationConfiguration, {
      EventBridgeConfiguration: {},
      QueueConfigurations: ['s3:ObjectCreated:*', 's3:ObjectTagging:Put'].map((event) => ({
        Events: [event],
        Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'quarantine/' }] } },
        QueueArn: arn(idOf(s.stack.queues.attachments.queue)),
      })),
    });
  });

  test('only S3, for this bucket, may send to the attachments queue; S3 may use the queue key for it; notify takes no service messages', () => {
    const policies = Object.values(resources(t, 'AWS::SQS::QueuePolicy'));
    const policyOf = (queueId: string) => {
      const p = policies.filter((x) => JSON.stringify(x.Properties!.Queues) === JSON.stringify([ref(queueId)]));
      assert.equal(p.length, 1, queueId);
      return p[0].Properties!.PolicyDocument.Statement as Statement[];
    };
    const allows = policyOf(idOf(s.stack.queues.attachments.queue)).filter((st) => st.Effect === 'Allow');
    assert.equal(allows.length, 1);
    assert.deepEqual(allows[0].Principal, { Service: 's3.amazonaws.com' });
    assert.ok(actions(allows[0]).includes('sqs:SendMessage'));
    assert.ok(actions(allows[0]).every((a) => ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'].includes(a)), `${actions(allows[0])}`);
    assert.deepEqual(allows[0].Condition, { ArnLike: { 'aws:SourceArn': arn(idOf(s.stack.buckets.attachments)) } });
    for (const q of [s.stack.queues.notify.queue, s.stack.queues.notify.dlq, s.stack.queues.attachments.dlq]) {
      assert.deepEqual(policyOf(idOf(q)).filter((st) => st.Effect === 'Allow'), [], `${idOf(q)}: no resource-policy grant`);
    }
    const keyPolicy = t.toJSON().Resources[idOf(s.stack.keys.queue)].Properties.KeyPolicy.Statement as Statement[];
    assert.ok(keyPolicy.some((st) => st.Principal?.Service === 's3.amazonaws.com' && actions(st).includes('kms:GenerateDataKey*')
      && JSON.stringify(st.Condition) === JSON.stringify({ ArnLike: { 'aws:SourceArn': arn(idOf(s.stack.buckets.attachments)) } })));
  });

  test('CORS: browsers may POST (presigned POST) from the citizen SPA only; no other bucket answers browsers', () => {
    const buckets = resources(t, 'AWS::S3::Bucket');
    for (const [id, b] of Object.entries(buckets)) {
      if (id === idOf(s.stack.buckets.attachments)) continue;
      assert.equal(b.Properties!.CorsConfiguration, undefined, id);
    }
    const rules = buckets[idOf(s.stack.buckets.attachments)].Properties!.CorsConfiguration.CorsRules as Statement[];
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0].AllowedMethods, ['POST']);
    assert.deepEqual(rules[0].AllowedOrigins, [cfg.spaOrigin]);
    assert.ok(!rules[0].AllowedOrigins.includes('*') && !rules[0].AllowedOrigins.includes(cfg.staffOrigin));
  });

  test('queues: linkage-inbound, linkage-outbound, attachments, notify and payment-events, each with a dead-letter queue whose depth is alarmed', () => {
    assert.deepEqual(Object.keys(s.stack.queues).sort(), [...QUEUES].sort());
    assert.deepEqual([...QUEUES].sort(), ['attachments', 'linkage-inbound', 'linkage-outbound', 'notify', 'payment-events']);
    const alarms = Object.entries(resources(t, 'AWS::CloudWatch::Alarm'));
    for (const [name, id] of [['attachments', 'AttachmentsDlqDepth'], ['notify', 'NotifyDlqDepth']] as const) {
      const found = alarms.filter(([logical]) => logical.startsWith(id));
      assert.equal(found.length, 1, id);
      const a = found[0][1].Properties!;
      assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [idOf(s.stack.queues[name].dlq), 'QueueName'] } }]);
      assert.equal(a.Threshold, 0);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    }
  });
});

describe('least privilege on the new functions', () => {
  const bucket = () => idOf(s.stack.buckets.attachments);
  const quarantine = () => objects(bucket(), 'quarantine/*');

  test('submissions: may put objects under quarantine/ (presigned POST), nothing else in S3: no read, no delete', () => {
    const st = s3Statements('submissions');
    assert.deepEqual(st.flatMap(actions), ['s3:PutObject']);
    assert.deepEqual(resourcesOf(st[0]), [quarantine()]);
    const all = statementsOf('submissions').flatMap(actions);
    for (const a of ['s3:DeleteObject', 's3:GetObject', 's3:PutObjectTagging', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']) {
      assert.ok(!all.includes(a), `submissions must not have ${a}`);
    }
  });

  test('submissions: sends to notify only; data and MAC keys; mail from the sender only; the table', () => {
    const st = statementsOf('submissions');
    const send = st.filter((x) => actions(x).includes('sqs:SendMessage'));
    assert.deepEqual(send.map((x) => x.Resource), [arn(idOf(s.stack.queues.notify.queue))]);
    assert.deepEqual(st.find((x) => actions(x).includes('kms:GenerateMac'))?.Resource, arn(idOf(s.stack.keys.mac)));
    assert.ok(st.some((x) => actions(x).includes('kms:GenerateDataKey') && JSON.stringify(x.Resource) === JSON.stringify(arn(idOf(s.stack.keys.data)))));
    assert.equal(st.find((x) => actions(x).includes('ses:SendEmail'))?.Condition.StringEquals['ses:FromAddress'], cfg.mailFrom);
    assert.ok(st.some((x) => actions(x).includes('dynamodb:PutItem')), 'drafts and applications: table readwrite');
  });

  test('attachments: reads objects and their tags, deletes, all under quarantine/ only; never writes an object', () => {
    const st = s3Statements('attachments');
    assert.deepEqual(st.flatMap(actions).sort(), [
      's3:DeleteObject', 's3:GetObject', 's3:GetObjectTagging', 's3:GetObjectVersion', 's3:GetObjectVersionTagging',
    ]);
    for (const x of st) assert.deepEqual(resourcesOf(x), [quarantine()], `${actions(x)}`);
    const all = statementsOf('attachments').flatMap(actions);
    for (const a of ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObjectVersion', 'sqs:SendMessage', 'ses:SendEmail', 'kms:GenerateMac']) {
      assert.ok(!all.includes(a), `attachments must not have ${a}`);
    }
    const consume = statementsOf('attachments').find((x) => actions(x).includes('sqs:ReceiveMessage'));
    assert.deepEqual(consume?.Resource, arn(idOf(s.stack.queues.attachments.queue)));
    // Reading SSE-KMS objects: decrypt with the storage key, through S3 only.
    const key = statementsOf('attachments').filter((x) => JSON.stringify(x.Resource) === JSON.stringify(arn(idOf(s.stack.keys.storage))));
    assert.deepEqual(key.flatMap(actions), ['kms:Decrypt']);
  });

  test('notify: no bucket at all, no application keys; mail from the sender only; consumes its own queue; records what it sent', () => {
    const st = statementsOf('notify');
    const all = st.flatMap(actions);
    assert.deepEqual(all.filter((a) => a.startsWith('s3:')), []);
    assert.ok(!st.some((x) => JSON.stringify(x.Resource).includes(idOf(s.stack.keys.storage))), 'no storage key');
    assert.ok(!all.includes('kms:GenerateMac') && !st.some((x) => JSON.stringify(x.Resource).includes(idOf(s.stack.keys.data))));
    assert.ok(!all.includes('sqs:SendMessage'));
    assert.equal(st.find((x) => actions(x).includes('ses:SendEmail'))?.Condition.StringEquals['ses:FromAddress'], cfg.mailFrom);
    assert.deepEqual(st.find((x) => actions(x).includes('sqs:ReceiveMessage'))?.Resource, arn(idOf(s.stack.queues.notify.queue)));
    assert.ok(all.includes('dynamodb:PutItem'), 'records sent mails (idempotency)');
  });

  test('across every function: only submissions writes to quarantine/ of the attachments bucket (staff only to staff/), only attachments deletes from it', () => {
    for (const spec of FUNCTIONS) {
      const st = statementsOf(spec.name).filter((x) => JSON.stringify(x.Resource).includes(bucket()));
      const acts = st.flatMap(actions);
      // Staff write their own files under staff/ only (checked in stack.test.ts).
      const puts = st.filter((x) => actions(x).includes('s3:PutObject')).map((x) => JSON.stringify(x.Resource));
      const quarantine = puts.filter((r) => r.includes('/quarantine/'));
      assert.equal(quarantine.length > 0, spec.name === 'submissions', `${spec.name} s3:PutObject on quarantine/`);
      assert.ok(puts.every((r) => r.includes('/quarantine/') || (spec.name === 'staff' && r.includes('/staff/'))), `${spec.name} s3:PutObject elsewhere`);
      assert.equal(acts.includes('s3:DeleteObject'), spec.name === 'attachments', `${spec.name} s3:DeleteObject`);
    }
  });
});

describe('GuardDuty Malware Protection for S3 (malwareProtection, default on)', () => {
  const roleId = () => idOf(s.stack.malwareProtection!.role);
  const guardDutyStatements = () => {
    const role = t.toJSON().Resources[roleId()];
    assert.equal(role.Properties.ManagedPolicyArns, undefined);
    return (role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>).flatMap((p) => p.PolicyDocument.Statement);
  };

  test('a plan on quarantine/ of the attachments bucket, tagging scanned objects, with its own role', () => {
    t.resourceCountIs('AWS::GuardDuty::MalwareProtectionPlan', 1);
    const plan = Object.values(resources(t, 'AWS::GuardDuty::MalwareProtectionPlan'))[0].Properties!;
    assert.deepEqual(plan.ProtectedResource, { S3Bucket: { BucketName: ref(idOf(s.stack.buckets.attachments)), ObjectPrefixes: ['quarantine/'] } });
    assert.deepEqual(plan.Actions, { Tagging: { Status: 'ENABLED' } });
    assert.deepEqual(plan.Role, arn(roleId()));
    t.hasOutput('MalwareProtectionPlanId', {});
    // GuardDuty and CDK's notification resource both write the bucket's notification configuration: never at once.
    const planResource = Object.values(resources(t, 'AWS::GuardDuty::MalwareProtectionPlan'))[0];
    const notificationsId = Object.entries(resources(t, 'Custom::S3BucketNotifications'))
      .find(([, r]) => JSON.stringify(r.Properties!.BucketName) === JSON.stringify(ref(idOf(s.stack.buckets.attachments))))![0];
    assert.ok((planResource.DependsOn as string[] | undefined)?.includes(notificationsId), 'the plan waits for the SQS notification');
  });

  test('the role: assumed by GuardDuty Malware Protection only', () => {
    const trust = t.toJSON().Resources[roleId()].Properties.AssumeRolePolicyDocument.Statement as Statement[];
    assert.deepEqual(trust, [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'malware-protection-plan.guardduty.amazonaws.com' } }]);
    // No function role can be assumed by GuardDuty, and this role is no function's.
    for (const spec of FUNCTIONS) assert.notEqual(idOf(s.stack.functions[spec.name].role!), roleId());
  });

  test('the role: the permissions GuardDuty documents, objects narrowed to quarantine/', () => {
    const st = guardDutyStatements();
    const bySid = new Map(st.map((x) => [x.Sid as string, x]));
    assert.equal(st.length, bySid.size, 'one statement per Sid');
    assert.deepEqual([...bySid.keys()].sort(), [
      'AllowCheckBucketOwnership', 'AllowDecryptForMalwareScan', 'AllowEnableS3EventBridgeEvents', 'AllowGuardDutyToMonitorEventBridgeManagedRule',
      'AllowManagedRuleToSendS3EventsToGuardDuty', 'AllowMalwareScan', 'AllowPostScanTag', 'AllowPutValidationObject',
    ].sort());
    const bucketId = idOf(s.stack.buckets.attachments);
    const rule = JSON.stringify(resourcesOf(bySid.get('AllowManagedRuleToSendS3EventsToGuardDuty')!));
    assert.match(rule, /:rule\/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3\*/);
    assert.deepEqual(bySid.get('AllowManagedRuleToSendS3EventsToGuardDuty')!.Condition,
      { StringLike: { 'events:ManagedBy': 'malware-protection-plan.guardduty.amazonaws.com' } });
    assert.deepEqual(actions(bySid.get('AllowManagedRuleToSendS3EventsToGuardDuty')!).sort(),
      ['events:DeleteRule', 'events:PutRule', 'events:PutTargets', 'events:RemoveTargets']);
    assert.deepEqual(actions(bySid.get('AllowGuardDutyToMonitorEventBridgeManagedRule')!).sort(), ['events:DescribeRule', 'events:ListTargetsByRule']);
    assert.deepEqual(actions(bySid.get('AllowPostScanTag')!).sort(),
      ['s3:GetObjectTagging', 's3:GetObjectVersionTagging', 's3:PutObjectTagging', 's3:PutObjectVersionTagging']);
    assert.deepEqual(actions(bySid.get('AllowMalwareScan')!).sort(), ['s3:GetObject', 's3:GetObjectVersion']);
    for (const sid of ['AllowPostScanTag', 'AllowMalwareScan']) {
      assert.deepEqual(resourcesOf(bySid.get(sid)!), [objects(bucketId, 'quarantine/*')], sid);
    }
    assert.deepEqual(actions(bySid.get('AllowPutValidationObject')!), ['s3:PutObject']);
    assert.deepEqual(resourcesOf(bySid.get('AllowPutValidationObject')!), [objects(bucketId, 'malware-protection-resource-validation-object')]);
    for (const sid of ['AllowEnableS3EventBridgeEvents', 'AllowCheckBucketOwnership']) {
      assert.deepEqual(resourcesOf(bySid.get(sid)!), [arn(bucketId)], sid);
    }
    assert.deepEqual(actions(bySid.get('AllowCheckBucketOwnership')!), ['s3:ListBucket']);
    const kms = bySid.get('AllowDecryptForMalwareScan')!;
    assert.deepEqual(resourcesOf(kms), [arn(idOf(s.stack.keys.storage))]);
    assert.deepEqual(actions(kms).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.match(JSON.stringify(kms.Condition.StringEquals['kms:ViaService']), /"s3\."/);
    // Nothing else: no delete, no wildcard action, no other bucket or key.
    for (const x of st) {
      for (const a of actions(x)) assert.ok(!a.includes('*') && !a.startsWith('s3:Delete'), a);
      assert.ok(!JSON.stringify(x.Resource).includes(idOf(s.stack.buckets.linkage)));
      assert.notEqual(x.Resource, '*');
    }
  });

  test('switched off: no plan, no GuardDuty role, no EventBridge delivery; the attachments function is told', () => {
    const o = off.template;
    o.resourceCountIs('AWS::GuardDuty::MalwareProtectionPlan', 0);
    assert.equal(off.stack.malwareProtection, undefined);
    const trusts = JSON.stringify(Object.values(resources(o, 'AWS::IAM::Role')).map((r) => r.Properties!.AssumeRolePolicyDocument));
    assert.ok(!trusts.includes('guardduty'));
    const bucketId = idIn(off.stack, off.stack.buckets.attachments);
    const custom = Object.values(resources(o, 'Custom::S3BucketNotifications'))
      .find((r) => JSON.stringify(r.Properties!.BucketName) === JSON.stringify(ref(bucketId)))!;
    assert.equal(custom.Properties!.NotificationConfiguration.EventBridgeConfiguration, undefined);
    assert.equal(custom.Properties!.NotificationConfiguration.QueueConfigurations.length, 1, 'uploads still reach the attachments queue');
    const env = o.toJSON().Resources[idIn(off.stack, off.stack.functions.attachments)].Properties.Environment.Variables;
    assert.equal(env.MADOGUCHI_MALWARE_SCAN, 'off');
    assert.equal(o.toJSON().Outputs?.MalwareProtectionPlanId, undefined);
    // Everything else about uploads is unchanged.
    assert.deepEqual(o.toJSON().Resources[bucketId].Properties.CorsConfiguration, t.toJSON().Resources[idOf(s.stack.buckets.attachments)].Properties.CorsConfiguration);
  });

  test('switched off: cdk-nag still clean', () => {
    const report = JSON.parse(fs.readFileSync(path.join(off.outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string }> }>;
    };
    for (const r of report.pluginReports) assert.deepEqual(r.violations.map((v) => v.ruleName), [], r.pluginName);
  });
});

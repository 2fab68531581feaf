/**
 * Card payments (issue 9): the payments function's routes and credentials, the payment-events
 * queue and schedule, and the gateway credentials: one Secrets Manager secret per tenant that
 * the operator creates, readable by these two functions only. Synthesized once with the example
 * tenant and once with another stage and pending time.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';

import { FUNCTIONS, HttpRoute } from '../lib/functions';
import { ACKNOWLEDGED } from '../lib/nag';
import { PAYMENT_GATEWAY } from '../lib/madoguchi-stack';
import { exampleConfig, resources, synth, Synth } from './helpers';

type Statement = Record<string, any>;

const cfg = exampleConfig();
let s: Synth;
let t: Template;
let stg: Synth;
const PAYMENT_FUNCTIONS = ['payment-events', 'payments'];

before(() => {
  s = synth();
  t = s.template;
  stg = synth({ config: exampleConfig({ stage: 'stg', paymentPendingMinutes: 45 }) });
});
after(() => {
  for (const x of [s, stg]) fs.rmSync(x.outdir, { recursive: true, force: true });
});

const idOf = (c: { node: { defaultChild?: unknown } }, x: Synth = s) => x.stack.getLogicalId(c.node.defaultChild as never);
const ref = (id: string) => ({ Ref: id });
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const actions = (st: Statement) => [st.Action].flat() as string[];
const spec = (name: string) => FUNCTIONS.find((f) => f.name === name)!;
const envOf = (name: string, x: Synth = s) => x.template.toJSON().Resources[idOf(x.stack.functions[name], x)].Properties.Environment.Variables;
/** The ARN pattern of the tenants' gateway secrets, as CloudFormation receives it. */
const secretArn = (stage: string) => ({
  'Fn::Join': ['', [
    'arn:', ref('AWS::Partition'), ':secretsmanager:', ref('AWS::Region'), ':', ref('AWS::AccountId'),
    `:secret:madoguchi/${stage}/payments/*`,
  ]],
});

function statementsOf(fnName: string, x: Synth = s): Statement[] {
  const roleId = idOf(x.stack.functions[fnName].role!, x);
  assert.equal(x.template.toJSON().Resources[roleId].Properties.ManagedPolicyArns, undefined, `${fnName}: no managed policies`);
  return Object.values(resources(x.template, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties!.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId))))
    .flatMap((p) => p.Properties!.PolicyDocument.Statement as Statement[]);
}

describe('payments: routes', () => {
  const routes = () => {
    const p = spec('payments');
    assert.equal(p.trigger.kind, 'http');
    return (p.trigger as { routes: HttpRoute[] }).routes;
  };

  test('citizens pay (citizen JWT or proof token), manage saved cards (accounts, checked by the function), staff see payments and set fees; the webhook is public', () => {
    assert.deepEqual(routes().map((r) => `${r.method} ${r.path} ${r.auth}`).sort(), [
      'DELETE /v1/tenants/{tenant}/my/payment-methods/{pm} function',
      'GET /v1/tenants/{tenant}/my/applications/{id}/payment citizen-or-proof',
      'GET /v1/tenants/{tenant}/my/payment-methods function',
      'GET /v1/tenants/{tenant}/staff/applications/{id}/payment staff',
      'GET /v1/tenants/{tenant}/staff/forms/{slug}/payments.csv staff',
      'POST /v1/tenants/{tenant}/my/applications/{id}/payment citizen-or-proof',
      'POST /v1/tenants/{tenant}/my/payment-methods/setup function',
      'POST /v1/tenants/{tenant}/payments/webhook none',
      'PUT /v1/tenants/{tenant}/my/payment-methods/{pm}/default function',
      'PUT /v1/tenants/{tenant}/staff/applications/{id}/fee staff',
    ]);
    assert.ok(spec('payments').verifiesTokens, 'the function verifies the tokens of its routes without a gateway authorizer');
  });

  test('in the template: staff routes behind the staff JWT authorizer, the others without one, all to the payments function', () => {
    const byKey = new Map(Object.values(resources(t, 'AWS::ApiGatewayV2::Route')).map((r) => [r.Properties!.RouteKey as string, r.Properties!]));
    const authorizers = resources(t, 'AWS::ApiGatewayV2::Authorizer');
    const integrations = resources(t, 'AWS::ApiGatewayV2::Integration');
    for (const r of routes()) {
      const route = byKey.get(`${r.method} ${r.path}`);
      assert.ok(route, `${r.method} ${r.path}`);
      const integrationId = (route.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string };
      assert.ok(JSON.stringify(integrations[integrationId.Ref].Properties!.IntegrationUri).includes(idOf(s.stack.functions.payments)), `${r.method} ${r.path} → payments`);
      if (r.auth === 'staff') {
        assert.equal(route.AuthorizationType, 'JWT');
        assert.equal(authorizers[route.AuthorizerId.Ref].Properties!.Name, 'staff');
      } else {
        assert.equal(route.AuthorizationType, 'NONE', `${r.method} ${r.path}`);
      }
    }
  });

  test('the webhook is public with its reason (the Stripe-Signature HMAC), acknowledged once for cdk-nag', () => {
    const webhook = routes().find((r) => r.path.endsWith('/payments/webhook'))!;
    assert.equal(webhook.method, 'POST');
    assert.equal(webhook.auth, 'none');
    assert.match(webhook.why!, /Stripe-Signature/);
    assert.match(webhook.why!, /webhook secret/);
    const acks = ACKNOWLEDGED.get(s.stack)!.filter((a) => a.id === 'AwsSolutions::AwsSolutions-APIG4' && a.reason.startsWith('POST /v1/tenants/{tenant}/payments/webhook '));
    assert.equal(acks.length, 1);
    assert.ok(acks[0].reason.includes(webhook.why!));
    // Saved cards: the reason names the tokens accepted.
    for (const r of routes().filter((x) => x.auth === 'function')) assert.match(r.why!, /My Number Card login tokens/);
  });

  test('CORS lets the SPA send the Idempotency-Key of POST …/payment', () => {
    const api = Object.values(resources(t, 'AWS::ApiGatewayV2::Api'))[0].Properties!;
    for (const h of ['idempotency-key', 'x-email-proof', 'authorization']) assert.ok((api.CorsConfiguration.AllowHeaders as string[]).includes(h), h);
    for (const m of ['PUT', 'DELETE']) assert.ok((api.CorsConfiguration.AllowMethods as string[]).includes(m), m);
  });

  test('the staff function keeps its own 23 routes; the payment staff routes are the payments function\'s', () => {
    const staffRoutes = (spec('staff').trigger as { routes: HttpRoute[] }).routes;
    assert.equal(staffRoutes.length, 23);
    assert.ok(!staffRoutes.some((r) => /payment|\/fee$/.test(r.path)));
  });
});

describe('payments and payment-events: functions, queue, schedule', () => {
  test('payments: 1024 MiB / 29 s (gateway calls with retries inside API Gateway\'s 30 s)', () => {
    const p = t.toJSON().Resources[idOf(s.stack.functions.payments)].Properties;
    assert.equal(p.MemorySize, 1024);
    assert.equal(p.Timeout, 29);
    assert.ok(p.Timeout >= 15 && p.Timeout <= 29);
  });

  test('payment-events: 5 minutes; SQS payment-events, batches of 10, at most 2 at a time, partial batch responses', () => {
    const fn = s.stack.functions['payment-events'];
    assert.equal(t.toJSON().Resources[idOf(fn)].Properties.Timeout, 300);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: ref(idOf(fn)),
      EventSourceArn: arn(idOf(s.stack.queues['payment-events'].queue)),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    const consume = statementsOf('payment-events').filter((x) => actions(x).includes('sqs:ReceiveMessage'));
    assert.deepEqual(consume.map((x) => x.Resource), [arn(idOf(s.stack.queues['payment-events'].queue))]);
  });

  test('the payment-events queue: KMS, dead-letter queue after 5 receives, visibility 6 × 5 min, DLQ depth alarmed', () => {
    const { queue, dlq } = s.stack.queues['payment-events'];
    const q = t.toJSON().Resources[idOf(queue)].Properties;
    assert.deepEqual(q.RedrivePolicy, { deadLetterTargetArn: arn(idOf(dlq)), maxReceiveCount: 5 });
    assert.equal(q.VisibilityTimeout, 1800);
    assert.deepEqual(q.KmsMasterKeyId, arn(idOf(s.stack.keys.queue)));
    const alarms = Object.entries(resources(t, 'AWS::CloudWatch::Alarm')).filter(([id]) => id.startsWith('PaymentEventsDlqDepth'));
    assert.equal(alarms.length, 1);
    const a = alarms[0][1].Properties!;
    assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [idOf(dlq), 'QueueName'] } }]);
    assert.equal(a.Threshold, 0);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
  });

  test('every 10 minutes EventBridge invokes payment-events (pending payments, reconciliation); undeliverable runs go to its DLQ', () => {
    const fnArn = arn(idOf(s.stack.functions['payment-events']));
    const rules = Object.values(resources(t, 'AWS::Events::Rule'))
      .filter((r) => JSON.stringify(r.Properties!.Targets ?? []).includes(JSON.stringify(fnArn)));
    assert.equal(rules.length, 1);
    const r = rules[0].Properties!;
    assert.equal(r.ScheduleExpression, 'rate(10 minutes)');
    assert.notEqual(r.State, 'DISABLED');
    assert.match(r.Description, /pending past the configured time/);
    assert.match(r.Description, /lost webhook/);
    assert.deepEqual(r.Targets[0].DeadLetterConfig, { Arn: arn(idOf(s.stack.queues['payment-events'].dlq)) });
    assert.equal(r.Targets[0].RetryPolicy.MaximumRetryAttempts, 2);
    // Only one rule mentions payments: no disabled placeholder is left.
    const mentions = Object.values(resources(t, 'AWS::Events::Rule')).filter((x) => /payment/i.test(x.Properties!.Description ?? ''));
    assert.equal(mentions.length, 1);
  });

  test('payments: table, audit copies under audit/, sends to payment-events and notify only; no application key, no mail', () => {
    const st = statementsOf('payments');
    const all = st.flatMap(actions);
    assert.ok(all.includes('dynamodb:PutItem'));
    const send = st.filter((x) => actions(x).includes('sqs:SendMessage')).map((x) => JSON.stringify(x.Resource)).sort();
    assert.deepEqual(send, [arn(idOf(s.stack.queues['payment-events'].queue)), arn(idOf(s.stack.queues.notify.queue))].map((x) => JSON.stringify(x)).sort());
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    const audit = { 'Fn::Join': ['', [arn(idOf(s.stack.buckets.audit)), '/audit/*']] };
    for (const x of s3) assert.deepEqual(x.Resource, audit, `${actions(x)}`);
    assert.deepEqual(s3.flatMap(actions).sort(), ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject']);
    for (const a of ['kms:GenerateMac', 'ses:SendEmail', 's3:DeleteObject', 'sqs:ReceiveMessage']) assert.ok(!all.includes(a), a);
    assert.ok(!st.some((x) => JSON.stringify(x.Resource).includes(idOf(s.stack.keys.data))), 'no data key');
  });

  test('payment-events: table, sends to notify only; no bucket, no application key, no mail', () => {
    const st = statementsOf('payment-events');
    const all = st.flatMap(actions);
    assert.ok(all.includes('dynamodb:PutItem'));
    assert.deepEqual(st.filter((x) => actions(x).includes('sqs:SendMessage')).map((x) => x.Resource), [arn(idOf(s.stack.queues.notify.queue))]);
    assert.deepEqual(all.filter((a) => a.startsWith('s3:')), []);
    for (const a of ['kms:GenerateMac', 'ses:SendEmail']) assert.ok(!all.includes(a), a);
    assert.ok(!st.some((x) => JSON.stringify(x.Resource).includes(idOf(s.stack.keys.data))), 'no data key');
  });
});

describe('gateway credentials: per-tenant secrets the operator creates', () => {
  test('payments and payment-events may GetSecretValue on madoguchi/<stage>/payments/* and nothing else in Secrets Manager', () => {
    for (const name of PAYMENT_FUNCTIONS) {
      const st = statementsOf(name).filter((x) => actions(x).some((a) => a.startsWith('secretsmanager:')));
      assert.equal(st.length, 1, name);
      assert.deepEqual(actions(st[0]), ['secretsmanager:GetSecretValue'], name);
      assert.deepEqual(st[0].Resource, secretArn('prod'), name);
      assert.equal(st[0].Effect, 'Allow');
      assert.equal(st[0].Condition, undefined);
    }
  });

  test('no other role of either stack has any Secrets Manager permission', () => {
    const paymentRoles = PAYMENT_FUNCTIONS.map((n) => JSON.stringify(ref(idOf(s.stack.functions[n].role!))));
    for (const tpl of [t, s.edgeTemplate]) {
      for (const [id, p] of Object.entries(resources(tpl, 'AWS::IAM::Policy'))) {
        const sm = (p.Properties!.PolicyDocument.Statement as Statement[]).filter((x) => actions(x).some((a) => a.startsWith('secretsmanager:')));
        if (sm.length === 0) continue;
        const roles = (p.Properties!.Roles as unknown[]).map((r) => JSON.stringify(r));
        assert.ok(roles.length === 1 && paymentRoles.includes(roles[0]), `${id} grants Secrets Manager to ${roles}`);
      }
      for (const [id, r] of Object.entries(resources(tpl, 'AWS::IAM::Role'))) {
        const inline = JSON.stringify(r.Properties!.Policies ?? []);
        assert.ok(!inline.includes('secretsmanager:'), `${id}: inline Secrets Manager permission`);
      }
    }
    const granted = FUNCTIONS.filter((f) => statementsOf(f.name).some((x) => actions(x).some((a) => a.startsWith('secretsmanager:')))).map((f) => f.name).sort();
    assert.deepEqual(granted, PAYMENT_FUNCTIONS);
    assert.deepEqual(FUNCTIONS.filter((f) => f.payments).map((f) => f.name).sort(), PAYMENT_FUNCTIONS);
  });

  test('the stack creates no payment secret (no secret values in code): only the origin-verify secret', () => {
    t.resourceCountIs('AWS::SecretsManager::Secret', 1);
    const names = Object.values(resources(t, 'AWS::SecretsManager::Secret')).map((r) => r.Properties!.Name as string);
    assert.ok(!names.some((n) => n.includes('/payments/')));
    assert.doesNotMatch(fs.readFileSync(s.templateFile, 'utf8'), /sk_live_|sk_test_|whsec_/);
  });

  test('the wildcard after the secret name is acknowledged for cdk-nag on exactly these two roles, with its reason', () => {
    const id = 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:madoguchi/prod/payments/*]';
    const acks = ACKNOWLEDGED.get(s.stack)!.filter((a) => a.id === id);
    assert.deepEqual(acks.map((a) => a.path).sort(), PAYMENT_FUNCTIONS.map((n) => s.stack.functions[n].role!.node.findChild('DefaultPolicy').node.path).sort());
    for (const a of acks) assert.match(a.reason, /6-character suffix/);
  });

  test('environment: gateway, secret prefix, environment name and pending minutes on exactly these two functions', () => {
    for (const name of PAYMENT_FUNCTIONS) {
      const env = envOf(name);
      assert.equal(env.MADOGUCHI_PAYMENT_GATEWAY, 'stripe', name);
      assert.equal(PAYMENT_GATEWAY, 'stripe');
      assert.equal(env.MADOGUCHI_PAYMENT_SECRET_PREFIX, 'madoguchi/prod/payments/', name);
      assert.equal(env.MADOGUCHI_PAYMENT_ENVIRONMENT, 'prod', name);
      assert.equal(env.MADOGUCHI_PAYMENT_PENDING_MINUTES, undefined, name);
      assert.equal(env.MADOGUCHI_TENANT, cfg.municipalityCode);
    }
    for (const f of FUNCTIONS) {
      if (PAYMENT_FUNCTIONS.includes(f.name)) continue;
      // The submission stores the payment deadline, and knows nothing else of the gateway.
      const expected = f.name === 'submissions' ? ['MADOGUCHI_PAYMENT_PENDING_MINUTES'] : [];
      assert.deepEqual(Object.keys(envOf(f.name)).filter((k) => k.startsWith('MADOGUCHI_PAYMENT_')), expected, f.name);
    }
    assert.equal(envOf('submissions').MADOGUCHI_PAYMENT_PENDING_MINUTES, '30');
    assert.equal(envOf('submissions', stg).MADOGUCHI_PAYMENT_PENDING_MINUTES, '45');
    assert.deepEqual(Object.keys(envOf('payments')).sort(), [
      'MADOGUCHI_API_URL', 'MADOGUCHI_BUCKET_AUDIT', 'MADOGUCHI_CITIZEN_AUDIENCE', 'MADOGUCHI_CITIZEN_ISSUER', 'MADOGUCHI_ORIGIN_VERIFY',
      'MADOGUCHI_PAYMENT_ENVIRONMENT', 'MADOGUCHI_PAYMENT_GATEWAY', 'MADOGUCHI_PAYMENT_SECRET_PREFIX',
      'MADOGUCHI_QUEUE_NOTIFY_URL', 'MADOGUCHI_QUEUE_PAYMENT_EVENTS_URL', 'MADOGUCHI_STAFF_AUDIENCE', 'MADOGUCHI_STAFF_ISSUER',
      'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.equal(envOf('payments').MADOGUCHI_API_URL, `https://${cfg.apiDomain}`);
    assert.deepEqual(envOf('payments').MADOGUCHI_QUEUE_PAYMENT_EVENTS_URL, ref(idOf(s.stack.queues['payment-events'].queue)));
    assert.deepEqual(Object.keys(envOf('payment-events')).sort(), [
      'MADOGUCHI_PAYMENT_ENVIRONMENT', 'MADOGUCHI_PAYMENT_GATEWAY', 'MADOGUCHI_PAYMENT_SECRET_PREFIX',
      'MADOGUCHI_QUEUE_NOTIFY_URL', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
  });

  test('another stage and pending time: the prefix, the environment, the grant and the acknowledgement follow', () => {
    for (const name of PAYMENT_FUNCTIONS) {
      const env = envOf(name, stg);
      assert.equal(env.MADOGUCHI_PAYMENT_SECRET_PREFIX, 'madoguchi/stg/payments/', name);
      assert.equal(env.MADOGUCHI_PAYMENT_ENVIRONMENT, 'stg', name);
      const st = statementsOf(name, stg).filter((x) => actions(x).includes('secretsmanager:GetSecretValue'));
      assert.deepEqual(st.map((x) => x.Resource), [secretArn('stg')], name);
    }
    assert.ok(ACKNOWLEDGED.get(stg.stack)!.some((a) => a.id.includes('secret:madoguchi/stg/payments/*')));
  });

  test('cdk-nag stays clean with another stage', () => {
    const report = JSON.parse(fs.readFileSync(`${stg.outdir}/validation-report.json`, 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string }> }>;
    };
    for (const r of report.pluginReports) assert.deepEqual(r.violations.map((v) => v.ruleName), [], r.pluginName);
  });
});

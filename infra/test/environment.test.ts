/**
 * The declaration → environment + grants mapping for every kind of resource, on a catalog
 * with one extra (hypothetical) function that uses everything. The real catalog is checked
 * in stack.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Duration } from 'aws-cdk-lib';

import { FUNCTIONS, FunctionSpec } from '../lib/functions';
import { synth } from './helpers';

const probe: FunctionSpec = {
  name: 'probe',
  description: 'test only: uses every kind of resource.',
  memoryMiB: 256,
  timeout: Duration.seconds(5),
  trigger: { kind: 'http', routes: [{ method: 'POST', path: '/v1/probe', auth: 'citizen' }] },
  table: 'read',
  buckets: [{ bucket: 'attachments', write: ['quarantine/'] }],
  sendsTo: ['linkage-inbound'],
  keys: ['data', 'mac'],
  mail: true,
  verifiesTokens: true,
};

test('every resource kind reaches the function under its resources.rs name, with its grant', () => {
  const s = synth({ functions: [...FUNCTIONS, probe] });
  try {
    const fn = s.stack.functions.probe;
    const id = (c: { node: { defaultChild?: unknown } }) => s.stack.getLogicalId(c.node.defaultChild as never);
    const res = s.template.toJSON().Resources;
    const env = res[id(fn)].Properties.Environment.Variables;
    assert.deepEqual(Object.keys(env).sort(), [
      'MADOGUCHI_BUCKET_ATTACHMENTS', 'MADOGUCHI_CITIZEN_AUDIENCE', 'MADOGUCHI_CITIZEN_ISSUER', 'MADOGUCHI_DATA_KEY_ID',
      'MADOGUCHI_MAC_KEY_ID', 'MADOGUCHI_MAIL_FROM', 'MADOGUCHI_ORIGIN_VERIFY', 'MADOGUCHI_QUEUE_LINKAGE_INBOUND_URL', 'MADOGUCHI_STAFF_AUDIENCE',
      'MADOGUCHI_STAFF_ISSUER', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.deepEqual(env.MADOGUCHI_QUEUE_LINKAGE_INBOUND_URL, { Ref: id(s.stack.queues['linkage-inbound'].queue) });
    assert.deepEqual(env.MADOGUCHI_DATA_KEY_ID, { 'Fn::GetAtt': [id(s.stack.keys.data), 'Arn'] });
    assert.deepEqual(env.MADOGUCHI_MAC_KEY_ID, { 'Fn::GetAtt': [id(s.stack.keys.mac), 'Arn'] });
    assert.equal(env.MADOGUCHI_MAIL_FROM, 'no-reply@city.example.lg.jp');

    const roleId = id(fn.role!);
    const statements = Object.values(res as Record<string, any>)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(roleId))
      .flatMap((r) => r.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
    const find = (action: string) => statements.find((st) => [st.Action].flat().includes(action));
    assert.deepEqual(find('s3:PutObject')?.Resource, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(s.stack.buckets.attachments), 'Arn'] }, '/quarantine/*']] });
    assert.ok(!find('dynamodb:PutItem'), 'read-only table access');
    assert.deepEqual(find('sqs:SendMessage')?.Resource, { 'Fn::GetAtt': [id(s.stack.queues['linkage-inbound'].queue), 'Arn'] });
    assert.deepEqual(find('kms:GenerateMac')?.Resource, { 'Fn::GetAtt': [id(s.stack.keys.mac), 'Arn'] });
    assert.equal(find('ses:SendEmail')?.Condition.StringEquals['ses:FromAddress'], 'no-reply@city.example.lg.jp');
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/probe', AuthorizationType: 'JWT' });
  } finally {
    fs.rmSync(s.outdir, { recursive: true, force: true });
  }
});

/**
 * e-signature and My Number Card login: the esign function's routes and credentials, the trust
 * bucket (JPKI CRLs under crl/) and who may touch it, its keys, and the JPKI trust settings from
 * the tenant config. Synthesized once with the example tenant (jpki configured) and once without.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';

import { FUNCTIONS, HttpRoute } from '../lib/functions';
import { jpkiEnvironment } from '../lib/madoguchi-stack';
import { ACKNOWLEDGED } from '../lib/nag';
import { exampleConfig, resources, synth, Synth } from './helpers';

type Statement = Record<string, any>;

const cfg = exampleConfig();
let s: Synth;
let t: Template;
let none: Synth;

before(() => {
  s = synth();
  t = s.template;
  none = synth({ config: exampleConfig({ jpki: undefined }) });
});
after(() => {
  for (const x of [s, none]) fs.rmSync(x.outdir, { recursive: true, force: true });
});

const idOf = (c: { node: { defaultChild?: unknown } }, x: Synth = s) => x.stack.getLogicalId(c.node.defaultChild as never);
const ref = (id: string) => ({ Ref: id });
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const actions = (st: Statement) => [st.Action].flat() as string[];
const esign = () => FUNCTIONS.find((f) => f.name === 'esign')!;
const envOf = (name: string, x: Synth = s) => x.template.toJSON().Resources[idOf(x.stack.functions[name], x)].Properties.Environment.Variables;

function statementsOf(fnName: string): Statement[] {
  const roleId = idOf(s.stack.functions[fnName].role!);
  assert.equal(t.toJSON().Resources[roleId].Properties.ManagedPolicyArns, undefined, `${fnName}: no managed policies`);
  return Object.values(resources(t, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties!.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId))))
    .flatMap((p) => p.Properties!.PolicyDocument.Statement as Statement[]);
}

describe('esign: routes and credentials', () => {
  test('an arm64 function of 1024 MiB and 29 s (a CRL fetch inside a request may take 20 s), serving the signing sessions and card login', () => {
    const p = t.toJSON().Resources[idOf(s.stack.functions.esign)].Properties;
    assert.equal(p.MemorySize, 1024);
    assert.equal(p.Timeout, 29);
    assert.deepEqual(p.Architectures, ['arm64']);
    const spec = esign();
    assert.equal(spec.trigger.kind, 'http');
    const routes = (spec.trigger as { routes: HttpRoute[] }).routes.map((r) => `${r.method} ${r.path} ${r.auth}`).sort();
    assert.deepEqual(routes, [
      'GET /v1/tenants/{tenant}/esign/sessions/{id} none',
      'GET /v1/tenants/{tenant}/esign/sessions/{id}/app none',
      'POST /v1/tenants/{tenant}/auth/card/challenges none',
      'POST /v1/tenants/{tenant}/auth/card/token none',
      'POST /v1/tenants/{tenant}/esign/sessions none',
      'POST /v1/tenants/{tenant}/esign/sessions/{id}/signature none',
      'PUT /v1/tenants/{tenant}/auth/card/link function',
    ]);
    assert.ok(spec.verifiesTokens, 'PUT …/auth/card/link: the function verifies the tokens itself');
  });

  test('in the template: every esign route reaches esign without a gateway authorizer', () => {
    const routes = new Map(Object.values(resources(t, 'AWS::ApiGatewayV2::Route'))
      .map((r) => [r.Properties!.RouteKey as string, r.Properties!] as const));
    const integrations = resources(t, 'AWS::ApiGatewayV2::Integration');
    for (const r of (esign().trigger as { routes: HttpRoute[] }).routes) {
      const route = routes.get(`${r.method} ${r.path}`);
      assert.ok(route, `${r.method} ${r.path}`);
      assert.equal(route.AuthorizationType, 'NONE', `${r.method} ${r.path}`);
      const integration = ((route.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string }).Ref;
      assert.ok(JSON.stringify(integrations[integration].Properties!.IntegrationUri).includes(idOf(s.stack.functions.esign)), `${r.method} ${r.path} → esign`);
    }
  });

  test('cdk-nag: each public route acknowledged with its why; the card link with its own reason', () => {
    const acks = ACKNOWLEDGED.get(s.stack)!.filter((a) => a.id === 'AwsSolutions::AwsSolutions-APIG4');
    for (const r of (esign().trigger as { routes: HttpRoute[] }).routes) {
      const a = acks.filter((x) => x.reason.startsWith(`${r.method} ${r.path} `));
      assert.equal(a.length, 1, `${r.method} ${r.path} acknowledged once`);
      assert.ok(r.why && a[0].reason.includes(r.why), `${r.method} ${r.path}: the route's why`);
    }
    const link = acks.find((x) => x.reason.startsWith('PUT /v1/tenants/{tenant}/auth/card/link '))!;
    assert.match(link.reason, /card-login tokens/);
    assert.doesNotMatch(link.reason, /staff pool/, 'not the generic both-pools reason');
  });

  test('CORS lets the browser send the session status token (X-Session-Token)', () => {
    const api = Object.values(resources(t, 'AWS::ApiGatewayV2::Api'))[0].Properties!;
    assert.ok((api.CorsConfiguration.AllowHeaders as string[]).includes('x-session-token'));
  });

  test('submissions opens signing sessions with a citizen JWT or a proof token', () => {
    const spec = FUNCTIONS.find((f) => f.name === 'submissions')!;
    const route = (spec.trigger as { routes: HttpRoute[] }).routes
      .find((r) => r.method === 'POST' && r.path === '/v1/tenants/{tenant}/forms/{slug}/signing-sessions');
    assert.equal(route?.auth, 'citizen-or-proof');
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'POST /v1/tenants/{tenant}/forms/{slug}/signing-sessions', AuthorizationType: 'NONE',
    });
  });
});

describe('trust bucket: JPKI CRLs under crl/', () => {
  test('private, encrypted with the storage key, versioned, TLS only, access-logged; nothing current expires', () => {
    const id = idOf(s.stack.buckets.trust);
    const b = t.toJSON().Resources[id];
    const p = b.Properties;
    assert.equal(b.DeletionPolicy, 'Retain');
    assert.deepEqual(p.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    assert.deepEqual(p.VersioningConfiguration, { Status: 'Enabled' });
    assert.deepEqual(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
      { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: arn(idOf(s.stack.keys.storage)) });
    assert.equal(p.OwnershipControls.Rules[0].ObjectOwnership, 'BucketOwnerEnforced');
    const logs = JSON.stringify(p.LoggingConfiguration.DestinationBucketName);
    assert.ok(logs.includes('AccessLogsBucket'), logs);
    assert.equal(p.LoggingConfiguration.LogFilePrefix, 'trust/');
    for (const r of p.LifecycleConfiguration.Rules as Statement[]) {
      assert.equal(r.ExpirationInDays, undefined, `${r.Id}: would expire the CRLs`);
      assert.equal(r.ExpirationDate, undefined, `${r.Id}: would expire the CRLs`);
    }
    const policy = Object.values(resources(t, 'AWS::S3::BucketPolicy')).find((x) => JSON.stringify(x.Properties!.Bucket) === JSON.stringify(ref(id)));
    assert.ok((policy?.Properties!.PolicyDocument.Statement as Statement[])
      .some((st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');
    assert.equal(p.CorsConfiguration, undefined);
    t.hasOutput('TrustBucketName', { Value: ref(id) });
  });

  test('esign reads objects under crl/ and anchors/ only: no write, no delete, no list; storage key to decrypt, through S3', () => {
    const bucket = idOf(s.stack.buckets.trust);
    const st = statementsOf('esign');
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    assert.equal(s3.length, 1);
    assert.deepEqual(actions(s3[0]).sort(), ['s3:GetObject', 's3:GetObjectVersion']);
    assert.deepEqual(s3[0].Resource, [
      { 'Fn::Join': ['', [arn(bucket), '/anchors/*']] },
      { 'Fn::Join': ['', [arn(bucket), '/crl/*']] },
    ]);
    const storage = st.filter((x) => JSON.stringify(x.Resource) === JSON.stringify(arn(idOf(s.stack.keys.storage))));
    assert.deepEqual(storage.flatMap(actions), ['kms:Decrypt']);
    assert.match(JSON.stringify(storage[0].Condition.StringEquals['kms:ViaService']), /"s3\./);
    assert.deepEqual(envOf('esign').MADOGUCHI_BUCKET_TRUST, ref(bucket));
  });

  test('no other function touches the trust bucket', () => {
    const bucket = idOf(s.stack.buckets.trust);
    for (const spec of FUNCTIONS) {
      if (spec.name === 'esign') continue;
      assert.ok(!statementsOf(spec.name).some((x) => JSON.stringify(x.Resource).includes(bucket)), spec.name);
      assert.equal(envOf(spec.name).MADOGUCHI_BUCKET_TRUST, undefined, spec.name);
    }
  });
});

describe('esign: keys, table, environment', () => {
  test('the data key (card-login token key), not the MAC key; the table read-write; sends and mails nothing', () => {
    const st = statementsOf('esign');
    const all = st.flatMap(actions);
    const data = st.filter((x) => JSON.stringify(x.Resource) === JSON.stringify(arn(idOf(s.stack.keys.data))));
    assert.deepEqual(data.flatMap(actions).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.ok(!all.includes('kms:GenerateMac'));
    assert.ok(!st.some((x) => JSON.stringify(x.Resource).includes(idOf(s.stack.keys.mac))), 'no statement on the MAC key');
    assert.ok(all.includes('dynamodb:PutItem'), 'sessions, challenges, links: table readwrite');
    for (const a of ['sqs:SendMessage', 'ses:SendEmail', 's3:PutObject', 's3:DeleteObject']) assert.ok(!all.includes(a), a);
  });

  test('environment: resources, issuers, the public API URL and the JPKI trust of the tenant config', () => {
    const env = envOf('esign');
    assert.deepEqual(Object.keys(env).sort(), [
      'MADOGUCHI_API_URL', 'MADOGUCHI_BUCKET_TRUST', 'MADOGUCHI_CITIZEN_AUDIENCE', 'MADOGUCHI_CITIZEN_ISSUER', 'MADOGUCHI_DATA_KEY_ID',
      'MADOGUCHI_JPKI_AUTH_ANCHORS', 'MADOGUCHI_JPKI_AUTH_CRLS', 'MADOGUCHI_JPKI_AUTH_OCSP_URL',
      'MADOGUCHI_JPKI_SIGN_ANCHORS', 'MADOGUCHI_JPKI_SIGN_CRLS', 'MADOGUCHI_JPKI_SIGN_OCSP_URL',
      'MADOGUCHI_ORIGIN_VERIFY', 'MADOGUCHI_STAFF_AUDIENCE', 'MADOGUCHI_STAFF_ISSUER', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.equal(env.MADOGUCHI_API_URL, `https://${cfg.apiDomain}`);
    assert.deepEqual(env.MADOGUCHI_DATA_KEY_ID, arn(idOf(s.stack.keys.data)));
    assert.equal(env.MADOGUCHI_JPKI_SIGN_ANCHORS, cfg.jpki!.signAnchors);
    assert.equal(env.MADOGUCHI_JPKI_SIGN_CRLS, cfg.jpki!.signCrls!.join(','));
    assert.equal(env.MADOGUCHI_JPKI_SIGN_OCSP_URL, cfg.jpki!.signOcspUrl);
    assert.equal(env.MADOGUCHI_JPKI_AUTH_ANCHORS, cfg.jpki!.authAnchors);
    assert.equal(env.MADOGUCHI_JPKI_AUTH_CRLS, cfg.jpki!.authCrls!.join(','));
    assert.equal(env.MADOGUCHI_JPKI_AUTH_OCSP_URL, cfg.jpki!.authOcspUrl);
    // Only esign is told about the JPKI trust.
    for (const spec of FUNCTIONS) {
      if (spec.name === 'esign') continue;
      assert.ok(!Object.keys(envOf(spec.name)).some((k) => k.startsWith('MADOGUCHI_JPKI_')), spec.name);
    }
  });

  test('without jpki in the tenant config: no MADOGUCHI_JPKI_* variable (the routes answer 503); the rest unchanged', () => {
    const env = envOf('esign', none);
    assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('MADOGUCHI_JPKI_')), []);
    assert.equal(env.MADOGUCHI_API_URL, `https://${cfg.apiDomain}`);
    assert.ok(env.MADOGUCHI_BUCKET_TRUST);
    const report = JSON.parse(fs.readFileSync(`${none.outdir}/validation-report.json`, 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string }> }>;
    };
    for (const r of report.pluginReports) assert.deepEqual(r.violations.map((v) => v.ruleName), [], r.pluginName);
  });

  test('a set is passed on as configured: only its variables, the CRL locations comma-joined', () => {
    assert.deepEqual(jpkiEnvironment({
      signAnchors: 'blob:anchors/sign-ca.pem',
      signCrls: ['http://crl.example.jp/sign.crl', 'blob:crl/sign.crl'],
    }), {
      MADOGUCHI_JPKI_SIGN_ANCHORS: 'blob:anchors/sign-ca.pem',
      MADOGUCHI_JPKI_SIGN_CRLS: 'http://crl.example.jp/sign.crl,blob:crl/sign.crl',
    });
    assert.deepEqual(jpkiEnvironment(undefined), {});
  });
});

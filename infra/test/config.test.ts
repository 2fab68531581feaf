/** Tenant parameters are checked before anything is synthesized. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { municipalityCheckDigit, resolveConfig, TenantConfig } from '../lib/config';
import { exampleConfig } from './helpers';

const base = exampleConfig() as TenantConfig;

test('the example configuration is valid and gets its defaults', () => {
  const c = resolveConfig({ ...base, apiRateLimit: undefined, auditRetentionDays: undefined });
  assert.equal(c.apiRateLimit, 200);
  assert.ok(c.auditRetentionDays >= 365);
});

test('the API origin host name defaults to origin.<apiDomain>', () => {
  const c = resolveConfig({ ...base, apiDomain: 'api.city.example.lg.jp', apiOriginDomain: undefined });
  assert.equal(c.apiOriginDomain, 'origin.api.city.example.lg.jp');
});

test('origin-verify versions default to none (the current version of the secret)', () => {
  assert.deepEqual(resolveConfig({ ...base, originVerifyVersions: undefined }).originVerifyVersions, []);
  const v = ['11111111-2222-3333-4444-555555555555', '66666666-7777-8888-9999-000000000000'];
  assert.deepEqual(resolveConfig({ ...base, originVerifyVersions: v }).originVerifyVersions, v);
});

test('GuardDuty Malware Protection on attachments is on unless switched off', () => {
  assert.equal(resolveConfig({ ...base, malwareProtection: undefined }).malwareProtection, true);
  assert.equal(resolveConfig({ ...base, malwareProtection: false }).malwareProtection, false);
});

test('card payments left pending: 30 minutes unless configured, 5 to 1440 accepted', () => {
  assert.equal(resolveConfig({ ...base, paymentPendingMinutes: undefined }).paymentPendingMinutes, 30);
  for (const m of [5, 30, 90, 1440]) assert.equal(resolveConfig({ ...base, paymentPendingMinutes: m }).paymentPendingMinutes, m);
  for (const m of [0, 4, 1441, 10080, -30, 12.5, Number.NaN, '30' as unknown as number]) {
    assert.throws(() => resolveConfig({ ...base, paymentPendingMinutes: m }), /paymentPendingMinutes must be a whole number of minutes from 5 to 1440/, String(m));
  }
});

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

test('JPKI trust: optional; blob:anchors/… or PEM anchors, http(s) or blob:crl/ CRLs, http(s) OCSP', () => {
  assert.equal(resolveConfig({ ...base, jpki: undefined }).jpki, undefined);
  const ok: TenantConfig['jpki'][] = [
    { signAnchors: 'blob:anchors/sign-ca.pem', signCrls: ['blob:crl/sign.crl'] },
    // J-LIS publishes CRLs over plain HTTP; they are signed.
    { signAnchors: PEM, signCrls: ['http://crl.example.jp/sign.crl', 'https://crl.example.jp/b.crl'] },
    { authAnchors: PEM, authOcspUrl: 'http://ocsp.example.jp/' },
    {},
  ];
  for (const jpki of ok) assert.doesNotThrow(() => resolveConfig({ ...base, jpki }), JSON.stringify(jpki));
});

test('check digit follows shared/domain/src/tenant.rs', () => {
  assert.equal(municipalityCheckDigit('27206'), 0); // 272060, the example tenant
  assert.equal(municipalityCheckDigit('13101'), 6); // 131016, 千代田区
});

test('bad parameters are refused with the name of the parameter', () => {
  const bad: Array<[Partial<TenantConfig>, RegExp]> = [
    [{ municipalityCode: '272061' }, /check digit/],
    [{ municipalityCode: '27206' }, /municipalityCode/],
    [{ stage: 'Prod' }, /stage/],
    [{ spaOrigin: 'http://x.example' }, /spaOrigin/],
    [{ spaOrigin: 'https://x.example/app' }, /spaOrigin/],
    [{ citizenAuthDomainPrefix: 'my-cognito' }, /citizenAuthDomainPrefix/],
    [{ mailFrom: 'nobody' }, /mailFrom/],
    [{ auditRetentionDays: 200 }, /auditRetentionDays/],
    [{ backupCopyVaultArn: 'vault' }, /backupCopyVaultArn/],
    [{ apiDomain: 'https://api.example.jp' }, /apiDomain/],
    [{ apiOriginDomain: 'api.shinsei.city.example.lg.jp' }, /apiOriginDomain must differ/],
    [{ hostedZone: { id: 'nope', name: 'city.example.lg.jp' } }, /hostedZone.id/],
    [{ hostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'other.example.jp' } }, /not inside hostedZone.name/],
    [{ oidcProviders: [{ name: 'LINE', issuerUrl: 'http://access.line.me', clientId: 'x', clientSecretName: 's' }] }, /LINE/],
    [{ originVerifyVersions: ['v1'] }, /originVerifyVersions/],
    [{ originVerifyVersions: ['11111111-2222-3333-4444-555555555555', '11111111-2222-3333-4444-555555555555'] }, /originVerifyVersions/],
    [{ originVerifyVersions: ['a', 'b', 'c'].map((c) => c.repeat(32)) }, /originVerifyVersions/],
    [{ malwareProtection: 'no' as unknown as boolean }, /malwareProtection/],
    [{ jpki: { signAnchors: 'anchors/sign-ca.pem', signCrls: ['blob:crl/a'] } }, /jpki.signAnchors/],
    [{ jpki: { signAnchors: 'blob:crl/sign-ca.pem', signCrls: ['blob:crl/a'] } }, /jpki.signAnchors/],
    // Nothing puts files into the Lambda package but the binary.
    [{ jpki: { signAnchors: 'file:/var/task/jpki/sign-ca.pem', signCrls: ['blob:crl/a'] } }, /jpki.signAnchors/],
    [{ jpki: { authAnchors: 'MIIB…', authCrls: ['blob:crl/a'] } }, /jpki.authAnchors/],
    [{ jpki: { authAnchors: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----', authCrls: ['blob:crl/a'] } }, /jpki.authAnchors/],
    [{ jpki: { signAnchors: PEM, signCrls: ['ftp://crl.example.jp/a.crl'] } }, /jpki.signCrls/],
    [{ jpki: { signAnchors: PEM, signCrls: ['blob:other/a.crl'] } }, /jpki.signCrls/],
    [{ jpki: { signAnchors: PEM, signCrls: ['https://a.example.jp/a.crl,https://b.example.jp/b.crl'] } }, /jpki.signCrls/],
    [{ jpki: { signAnchors: PEM, signOcspUrl: 'ocsp.example.jp' } }, /jpki.signOcspUrl/],
    [{ jpki: { signAnchors: PEM } }, /jpki.signAnchors needs/],
    [{ jpki: { signCrls: ['blob:crl/a'] } }, /need jpki.signAnchors/],
    [{ jpki: { signAnchors: PEM, signCRLs: ['blob:crl/a'] } as never }, /jpki.signCRLs is not a parameter/],
    [{ jpki: { signAnchors: PEM.repeat(40), signCrls: ['blob:crl/a'] } }, /use blob:anchors/],
  ];
  for (const [override, message] of bad) {
    assert.throws(() => resolveConfig({ ...base, ...override }), message, JSON.stringify(override));
  }
});

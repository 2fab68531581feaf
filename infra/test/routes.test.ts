/**
 * The HTTP routes API Gateway sends to the functions are the routes the functions serve: the
 * catalog (`lib/functions.ts`) against the OpenAPI document generated from the Rust handlers
 * (`docs/openapi.json`, kept fresh by a Rust test). A route missing from the catalog would be
 * unreachable in AWS; one missing from the handlers would reach a function that answers 404.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { FUNCTIONS } from '../lib/functions';
import { REPO } from './helpers';

test('every HTTP route in the catalog is served by a handler, and every handler is routed', () => {
  const doc = JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'openapi.json'), 'utf8')) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const served = new Set<string>();
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const m of Object.keys(methods)) served.add(`${m.toUpperCase()} ${p}`);
  }
  const routed = new Map<string, string>();
  for (const f of FUNCTIONS) {
    if (f.trigger.kind !== 'http') continue;
    for (const r of f.trigger.routes) {
      const key = `${r.method} ${r.path}`;
      // /healthz is served by every HTTP function; any one of them may own the route.
      if (r.path !== '/healthz') assert.ok(!routed.has(key), `${key} routed to ${routed.get(key)} and ${f.name}`);
      routed.set(key, f.name);
    }
  }
  assert.deepEqual([...routed.keys()].filter((k) => !served.has(k)).sort(), [], 'routed but not served');
  assert.deepEqual([...served].filter((k) => !routed.has(k)).sort(), [], 'served but not routed');
});

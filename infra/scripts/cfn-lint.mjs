#!/usr/bin/env node
// Runs cfn-lint on every template the tests synthesized (build/cdk.out.test/*.template.json).
// Fails on errors (cfn-lint exit bits 1 and 2); warnings (bit 4) and informational (bit 8)
// findings are printed. cfn-lint comes from the project venv (requirements-dev.txt), or
// from $CFN_LINT, or from PATH.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const infra = join(here, '..');
const outdir = join(infra, 'build', 'cdk.out.test');
const venv = join(infra, '..', '.venv', 'bin', 'cfn-lint');
const cfnLint = process.env.CFN_LINT ?? (existsSync(venv) ? venv : 'cfn-lint');

if (!existsSync(outdir)) {
  console.error(`cfn-lint: ${outdir} does not exist; run the tests first (npm test)`);
  process.exit(1);
}
const templates = readdirSync(outdir).filter((f) => f.endsWith('.template.json')).map((f) => join(outdir, f));
if (templates.length === 0) {
  console.error('cfn-lint: no synthesized template found');
  process.exit(1);
}
const run = spawnSync(cfnLint, ['--format', 'parseable', '--', ...templates], { stdio: 'inherit' });
if (run.error) {
  console.error(`cfn-lint: cannot run ${cfnLint} (${run.error.message}); create the venv with \`make venv\` or set CFN_LINT`);
  process.exit(1);
}
const code = run.status ?? 1;
if (code & 3) {
  console.error(`cfn-lint: errors in ${templates.length} template(s) (exit ${code})`);
  process.exit(1);
}
console.log(`cfn-lint: ${templates.length} template(s), no errors${code & 4 ? ' (warnings above)' : ''}`);

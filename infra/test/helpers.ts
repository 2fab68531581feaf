import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';

import { buildApp, BuiltApp } from '../lib/app';
import { loadConfig, ResolvedTenantConfig, resolveConfig, TenantConfig } from '../lib/config';
import { FunctionSpec } from '../lib/functions';

/** infra/ (tests run from build/test/). */
export const INFRA = path.resolve(__dirname, '..', '..');
export const REPO = path.resolve(INFRA, '..');

export function exampleConfig(overrides: Partial<TenantConfig> = {}): ResolvedTenantConfig {
  const base = loadConfig(path.join(INFRA, 'config', 'example.json'));
  return resolveConfig({ ...base, ...overrides });
}

export interface Synth extends BuiltApp {
  readonly template: Template;
  readonly templateFile: string;
  /** The edge stack (us-east-1): CloudFront distribution and its web ACL. */
  readonly edgeTemplate: Template;
  readonly outdir: string;
}

/**
 * Synthesizes like `cdk synth` (cdk.json feature flags) but with bundling skipped for every
 * stack, so no Rust is compiled, and with the cdk-nag packs attached.
 */
export function synth(opts: { config?: ResolvedTenantConfig; outdir?: string; functions?: readonly FunctionSpec[] } = {}): Synth {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(INFRA, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const outdir = opts.outdir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'madoguchi-cdk-'));
  fs.rmSync(outdir, { recursive: true, force: true });
  const built = buildApp(opts.config ?? exampleConfig(), {
    outdir,
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] },
  }, opts.functions ? { functions: opts.functions } : undefined);
  const assembly = built.app.synth();
  const templateFile = path.join(assembly.directory, built.stack.templateFile);
  const template = Template.fromJSON(JSON.parse(fs.readFileSync(templateFile, 'utf8')));
  const edgeTemplate = Template.fromJSON(JSON.parse(fs.readFileSync(path.join(assembly.directory, built.edge.templateFile), 'utf8')));
  return { ...built, template, templateFile, edgeTemplate, outdir: assembly.directory };
}

type Resources = Record<string, { Type: string; Properties?: Record<string, any>; [k: string]: unknown }>;

export function resources(t: Template, type: string): Resources {
  return t.findResources(type) as Resources;
}

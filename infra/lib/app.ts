/**
 * Builds the CDK app for one tenant: the stack, the cdk-nag packs and our acknowledgements.
 * Used by bin/madoguchi.ts (deploy) and by the tests (synth without bundling).
 */
import { App, AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';

import { ResolvedTenantConfig } from './config';
import { EDGE_REGION, EdgeStack } from './edge-stack';
import { MadoguchiStack, MadoguchiStackProps } from './madoguchi-stack';
import { acknowledgeEdgeFindings, acknowledgeFindings } from './nag';

export interface BuiltApp {
  readonly app: App;
  readonly stack: MadoguchiStack;
  /** us-east-1: CloudFront distribution and web ACL in front of the API. */
  readonly edge: EdgeStack;
}

export function stackName(config: ResolvedTenantConfig): string {
  return `Madoguchi-${config.municipalityCode}-${config.stage}`;
}

export function buildApp(
  config: ResolvedTenantConfig,
  appProps?: AppProps,
  extra?: Partial<MadoguchiStackProps>,
): BuiltApp {
  return addTenant(new App(appProps), config, extra);
}

/** The tenant's stack, its edge stack (us-east-1), the cdk-nag packs (AwsSolutions, Serverless) and our acknowledgements. */
export function addTenant(app: App, config: ResolvedTenantConfig, extra?: Partial<MadoguchiStackProps>): BuiltApp {
  const stack = new MadoguchiStack(app, stackName(config), {
    config,
    env: { account: config.account ?? process.env.CDK_DEFAULT_ACCOUNT, region: config.region },
    description: `Madoguchi for ${config.municipalityCode} (${config.stage})`,
    terminationProtection: config.stage === 'prod',
    ...extra,
  });
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true }),
    new ServerlessChecks(app, { verbose: true }),
  );
  const edge = new EdgeStack(app, `${stackName(config)}-edge`, {
    config,
    env: { account: config.account ?? process.env.CDK_DEFAULT_ACCOUNT, region: EDGE_REGION },
    description: `Madoguchi for ${config.municipalityCode} (${config.stage}): CloudFront and WAF in front of the API`,
    terminationProtection: config.stage === 'prod',
  });
  // The distribution's origin is the main stack's API custom domain, and its x-origin-verify
  // header reads the us-east-1 replica of the main stack's secret: deploy the main stack first.
  edge.addStackDependency(stack, 'CloudFront forwards to the API custom domain of the main stack and sends its origin-verify secret (us-east-1 replica)');
  acknowledgeFindings(stack);
  acknowledgeEdgeFindings(edge);
  return { app, stack, edge };
}

#!/usr/bin/env node
/**
 * CDK entry point: `npx cdk deploy -c tenantConfig=config/<code>.json` (see docs/deploy.md).
 */
import { App } from 'aws-cdk-lib';

import { addTenant } from '../lib/app';
import { loadConfig } from '../lib/config';

const app = new App();
const file = app.node.tryGetContext('tenantConfig') as string | undefined;
if (!file) {
  throw new Error('pass the tenant parameters: -c tenantConfig=config/<municipality code>.json');
}
addTenant(app, loadConfig(file));

/** The workflows the worker registers (the bundle's entry point). */
export { deployVersion } from './deploy.workflow';
export { provisionEnvironment } from './provision.workflow';
export { releaseVersion } from './release.workflow';
export { deliverEvents } from './notify.workflow';

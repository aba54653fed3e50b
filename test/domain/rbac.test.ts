/**
 * The permission table of /work/shared/api-contract.md ("Authentication and roles"), written out row by
 * row and checked against every function of src/domain/rbac.ts. The expectations are literal: nothing
 * here derives them from the roles, so a change to either the table or the code shows up.
 *
 * Scopes, for actions on something owned by a team (the actor always belongs to `payments`):
 *   own   — the target belongs to `payments`
 *   other — the target belongs to `search`
 *   none  — the target has no team (a service with no team: PLATFORM_ADMIN only)
 * For approvals and cancel, `self` means the actor requested the deployment, `peer` that someone else did.
 */
import {
  auditScope,
  canCancel,
  canDecide,
  canDeploy,
  canManagePolicies,
  canManageService,
  canManageTeams,
  canProvision,
  canRead,
} from '../../src/domain/rbac';
import type { Actor, Role } from '../../src/domain/types';

type Scope = 'own' | 'other' | 'none';
type Requester = 'self' | 'peer';

const ME = 'alice';
const PEER = 'bob';
const MY_TEAM = 'payments';
const TARGET: Record<Scope, string | null> = { own: MY_TEAM, other: 'search', none: null };
const REQUESTER: Record<Requester, string> = { self: ME, peer: PEER };

const actor = (roles: Role[], teams: string[] = [MY_TEAM]): Actor => ({ sub: ME, roles, teams });

// ---------------------------------------------------------------------------------------------------
// Actions that do not depend on a team: read, create/update teams, create/update policies.
// ---------------------------------------------------------------------------------------------------
const GLOBAL_TABLE: [action: 'read' | 'manageTeams' | 'managePolicies', role: Role, allowed: boolean][] = [
  ['read', 'PLATFORM_ADMIN', true],
  ['read', 'TEAM_ADMIN', true],
  ['read', 'DEVELOPER', true],
  ['manageTeams', 'PLATFORM_ADMIN', true],
  ['manageTeams', 'TEAM_ADMIN', false],
  ['manageTeams', 'DEVELOPER', false],
  ['managePolicies', 'PLATFORM_ADMIN', true],
  ['managePolicies', 'TEAM_ADMIN', false],
  ['managePolicies', 'DEVELOPER', false],
];
const GLOBAL_FN = { read: canRead, manageTeams: canManageTeams, managePolicies: canManagePolicies };

describe.each(GLOBAL_TABLE)('%s as %s', (action, role, allowed) => {
  it.each([
    ['member of a team', [MY_TEAM]],
    ['member of several teams', [MY_TEAM, 'search']],
    ['member of no team', []],
  ])(`is ${allowed ? 'allowed' : 'denied'} (%s)`, (_what, teams) => {
    expect(GLOBAL_FN[action](actor([role], teams))).toBe(allowed);
  });
});

// ---------------------------------------------------------------------------------------------------
// Actions on something a team owns: register/update a service, provision, trigger a deployment.
// ---------------------------------------------------------------------------------------------------
const TEAM_TABLE: [
  action: 'manageService' | 'provision' | 'deploy',
  role: Role,
  scope: Scope,
  allowed: boolean,
][] = [
  // register/update a service: PLATFORM_ADMIN any, TEAM_ADMIN of own teams, DEVELOPER no
  ['manageService', 'PLATFORM_ADMIN', 'own', true],
  ['manageService', 'PLATFORM_ADMIN', 'other', true],
  ['manageService', 'PLATFORM_ADMIN', 'none', true],
  ['manageService', 'TEAM_ADMIN', 'own', true],
  ['manageService', 'TEAM_ADMIN', 'other', false],
  ['manageService', 'TEAM_ADMIN', 'none', false],
  ['manageService', 'DEVELOPER', 'own', false],
  ['manageService', 'DEVELOPER', 'other', false],
  ['manageService', 'DEVELOPER', 'none', false],
  // provision an environment: PLATFORM_ADMIN any, TEAM_ADMIN of own teams, DEVELOPER no
  ['provision', 'PLATFORM_ADMIN', 'own', true],
  ['provision', 'PLATFORM_ADMIN', 'other', true],
  ['provision', 'PLATFORM_ADMIN', 'none', true],
  ['provision', 'TEAM_ADMIN', 'own', true],
  ['provision', 'TEAM_ADMIN', 'other', false],
  ['provision', 'TEAM_ADMIN', 'none', false],
  ['provision', 'DEVELOPER', 'own', false],
  ['provision', 'DEVELOPER', 'other', false],
  ['provision', 'DEVELOPER', 'none', false],
  // trigger a deployment: PLATFORM_ADMIN any, TEAM_ADMIN of own teams, DEVELOPER of own teams
  ['deploy', 'PLATFORM_ADMIN', 'own', true],
  ['deploy', 'PLATFORM_ADMIN', 'other', true],
  ['deploy', 'PLATFORM_ADMIN', 'none', true],
  ['deploy', 'TEAM_ADMIN', 'own', true],
  ['deploy', 'TEAM_ADMIN', 'other', false],
  ['deploy', 'TEAM_ADMIN', 'none', false],
  ['deploy', 'DEVELOPER', 'own', true],
  ['deploy', 'DEVELOPER', 'other', false],
  ['deploy', 'DEVELOPER', 'none', false],
];
const TEAM_FN = { manageService: canManageService, provision: canProvision, deploy: canDeploy };

it.each(TEAM_TABLE)('%s as %s on a target of %s team: %p', (action, role, scope, allowed) => {
  expect(TEAM_FN[action](actor([role]), TARGET[scope])).toBe(allowed);
});

// ---------------------------------------------------------------------------------------------------
// Approve/reject and cancel: also depend on who requested the deployment.
// ---------------------------------------------------------------------------------------------------
const REQUEST_TABLE: [
  action: 'decide' | 'cancel',
  role: Role,
  scope: Scope,
  requester: Requester,
  allowed: boolean,
][] = [
  // approve/reject: PLATFORM_ADMIN any, not one they requested; TEAM_ADMIN of own teams, not one they requested; DEVELOPER no
  ['decide', 'PLATFORM_ADMIN', 'own', 'peer', true],
  ['decide', 'PLATFORM_ADMIN', 'other', 'peer', true],
  ['decide', 'PLATFORM_ADMIN', 'none', 'peer', true],
  ['decide', 'PLATFORM_ADMIN', 'own', 'self', false],
  ['decide', 'PLATFORM_ADMIN', 'other', 'self', false],
  ['decide', 'PLATFORM_ADMIN', 'none', 'self', false],
  ['decide', 'TEAM_ADMIN', 'own', 'peer', true],
  ['decide', 'TEAM_ADMIN', 'other', 'peer', false],
  ['decide', 'TEAM_ADMIN', 'none', 'peer', false],
  ['decide', 'TEAM_ADMIN', 'own', 'self', false],
  ['decide', 'TEAM_ADMIN', 'other', 'self', false],
  ['decide', 'TEAM_ADMIN', 'none', 'self', false],
  ['decide', 'DEVELOPER', 'own', 'peer', false],
  ['decide', 'DEVELOPER', 'other', 'peer', false],
  ['decide', 'DEVELOPER', 'none', 'peer', false],
  ['decide', 'DEVELOPER', 'own', 'self', false],
  ['decide', 'DEVELOPER', 'other', 'self', false],
  ['decide', 'DEVELOPER', 'none', 'self', false],
  // cancel: PLATFORM_ADMIN any; TEAM_ADMIN of own teams; DEVELOPER one they requested
  ['cancel', 'PLATFORM_ADMIN', 'own', 'peer', true],
  ['cancel', 'PLATFORM_ADMIN', 'other', 'peer', true],
  ['cancel', 'PLATFORM_ADMIN', 'none', 'peer', true],
  ['cancel', 'PLATFORM_ADMIN', 'own', 'self', true],
  ['cancel', 'PLATFORM_ADMIN', 'other', 'self', true],
  ['cancel', 'PLATFORM_ADMIN', 'none', 'self', true],
  ['cancel', 'TEAM_ADMIN', 'own', 'peer', true],
  ['cancel', 'TEAM_ADMIN', 'other', 'peer', false],
  ['cancel', 'TEAM_ADMIN', 'none', 'peer', false],
  ['cancel', 'TEAM_ADMIN', 'own', 'self', true],
  // The contract's TEAM_ADMIN cell says only "of own teams"; the requester of a deployment outside
  // their teams is read here as still allowed to cancel it (what the contract grants even a DEVELOPER).
  ['cancel', 'TEAM_ADMIN', 'other', 'self', true],
  ['cancel', 'TEAM_ADMIN', 'none', 'self', true],
  ['cancel', 'DEVELOPER', 'own', 'peer', false],
  ['cancel', 'DEVELOPER', 'other', 'peer', false],
  ['cancel', 'DEVELOPER', 'none', 'peer', false],
  ['cancel', 'DEVELOPER', 'own', 'self', true],
  ['cancel', 'DEVELOPER', 'other', 'self', true],
  ['cancel', 'DEVELOPER', 'none', 'self', true],
];
const REQUEST_FN = { decide: canDecide, cancel: canCancel };

it.each(REQUEST_TABLE)(
  '%s as %s on a deployment of %s team requested by %s: %p',
  (action, role, scope, requester, allowed) => {
    expect(REQUEST_FN[action](actor([role]), TARGET[scope], REQUESTER[requester])).toBe(allowed);
  },
);

// ---------------------------------------------------------------------------------------------------
// Reading the audit log: PLATFORM_ADMIN all, TEAM_ADMIN entries of own teams, DEVELOPER no.
// ---------------------------------------------------------------------------------------------------
const AUDIT_TABLE: [role: Role, teams: string[], scope: 'all' | string[] | null][] = [
  ['PLATFORM_ADMIN', [MY_TEAM], 'all'],
  ['PLATFORM_ADMIN', [], 'all'],
  ['TEAM_ADMIN', [MY_TEAM], [MY_TEAM]],
  ['TEAM_ADMIN', [MY_TEAM, 'search'], [MY_TEAM, 'search']],
  ['TEAM_ADMIN', [], []],
  ['DEVELOPER', [MY_TEAM], null],
  ['DEVELOPER', [], null],
];

it.each(AUDIT_TABLE)('auditScope as %s of teams %j is %j', (role, teams, scope) => {
  expect(auditScope(actor([role], teams))).toEqual(scope);
});

it('auditScope hands out a copy of the team list', () => {
  const a = actor(['TEAM_ADMIN'], [MY_TEAM]);
  const scope = auditScope(a) as string[];
  scope.push('search');
  expect(a.teams).toEqual([MY_TEAM]);
});

// ---------------------------------------------------------------------------------------------------
// Several roles give the union of what each allows; no role allows nothing.
// ---------------------------------------------------------------------------------------------------
describe('several roles', () => {
  it('TEAM_ADMIN + DEVELOPER: the team admin rights on own teams, nothing more elsewhere', () => {
    const a = actor(['DEVELOPER', 'TEAM_ADMIN']);
    expect(canManageService(a, MY_TEAM)).toBe(true);
    expect(canProvision(a, MY_TEAM)).toBe(true);
    expect(canDecide(a, MY_TEAM, PEER)).toBe(true);
    expect(canManageService(a, 'search')).toBe(false);
    expect(canDeploy(a, 'search')).toBe(false);
    expect(canDecide(a, 'search', PEER)).toBe(false);
    expect(canManageTeams(a)).toBe(false);
    expect(auditScope(a)).toEqual([MY_TEAM]);
  });

  it('DEVELOPER + PLATFORM_ADMIN: everything, but still never approving their own request', () => {
    const a = actor(['DEVELOPER', 'PLATFORM_ADMIN'], []);
    expect(canManageTeams(a)).toBe(true);
    expect(canManagePolicies(a)).toBe(true);
    expect(canManageService(a, null)).toBe(true);
    expect(canDeploy(a, 'search')).toBe(true);
    expect(canDecide(a, 'search', PEER)).toBe(true);
    expect(canDecide(a, 'search', ME)).toBe(false);
    expect(auditScope(a)).toBe('all');
  });
});

describe('a token with no role', () => {
  const nobody = actor([], [MY_TEAM]);
  it.each([
    ['read', () => canRead(nobody)],
    ['manage teams', () => canManageTeams(nobody)],
    ['manage policies', () => canManagePolicies(nobody)],
    ['manage a service', () => canManageService(nobody, MY_TEAM)],
    ['provision', () => canProvision(nobody, MY_TEAM)],
    ['deploy', () => canDeploy(nobody, MY_TEAM)],
    ['decide', () => canDecide(nobody, MY_TEAM, PEER)],
    ['cancel its own request', () => canCancel(nobody, MY_TEAM, ME)],
  ])('may not %s', (_what, allowed) => {
    expect(allowed()).toBe(false);
  });

  it('reads no audit entries', () => {
    expect(auditScope(nobody)).toBeNull();
  });
});

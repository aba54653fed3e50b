/**
 * Unit tests of the pure guardrails in src/domain/policies.ts and the restricted-key matcher in
 * src/domain/restricted-keys.ts. No database, no Temporal: every policy
 * set is built from the shipped defaults (or a variation of them) with buildPolicySet.
 */
import {
  DEFAULT_POLICIES,
  POLICY_CONFIG_SCHEMAS,
  approvalRequirement,
  buildPolicySet,
  checkPromotionOrder,
  soakSeconds,
  durationSeconds,
  evaluateDeploymentConfig,
  evaluateEnvironment,
  evaluateServiceTags,
  prerequisiteTier,
  type PolicyKind,
  type StoredPolicy,
} from '../../src/domain/policies';
import type { Violation } from '../../src/domain/errors';
import { findRestrictedKeys, redactRestricted } from '../../src/domain/restricted-keys';

/** The shipped policies, all enabled, as stored rows. */
const defaultRows = (): StoredPolicy[] => DEFAULT_POLICIES.map((p) => ({ ...p, enabled: true }));
/** The shipped policies with `overrides` applied to the rows named. */
const rowsWith = (overrides: Record<string, Partial<StoredPolicy>>): StoredPolicy[] =>
  defaultRows().map((r) => ({ ...r, ...overrides[r.name] }));

const defaults = buildPolicySet(defaultRows());
const none = buildPolicySet([]);
const PATTERNS = ['password', 'secret', 'token'];

const RESTRICTED_HINT = /secret manager/;
const okTags = { owner: 'alice', data_sensitivity: 'internal' };

/** Every violation is fully described: a rule, the field, a message and a hint, all non-empty. */
function expectWellFormed(violations: Violation[]): void {
  for (const v of violations) {
    expect(Object.keys(v).sort()).toEqual(['field', 'hint', 'message', 'rule']);
    for (const key of ['rule', 'field', 'message', 'hint'] as const) {
      expect(typeof v[key]).toBe('string');
      expect(v[key].trim()).not.toBe('');
    }
  }
}

describe('findRestrictedKeys', () => {
  it('names a key at the top level', () => {
    expect(findRestrictedKeys({ password: 'x', replicas: 2 }, PATTERNS, 'config')).toEqual([
      'config.password',
    ]);
  });

  it('finds keys at any depth', () => {
    const value = { a: { b: { c: { d: { e: { dbPassword: 'x' } } } } } };
    expect(findRestrictedKeys(value, PATTERNS, 'config')).toEqual(['config.a.b.c.d.e.dbPassword']);
  });

  it.each([
    ['PASSWORD', 'config.PASSWORD'],
    ['PassWord', 'config.PassWord'],
    ['apiToken', 'config.apiToken'],
    ['API_TOKEN', 'config.API_TOKEN'],
    ['client_SECRET_ref', 'config.client_SECRET_ref'],
    ['Secrets', 'config.Secrets'],
    // Spellings that look the same to a reader: zero-width characters inside, full-width letters.
    ['pass\u200bword', 'config.pass\u200bword'],
    ['to\u2060ken', 'config.to\u2060ken'],
    ['pass\u034fword', 'config.pass\u034fword'],
    ['pass\ufe0fword', 'config.pass\ufe0fword'],
    ['pass\u3164word', 'config.pass\u3164word'],
    ['s\u0301ecret', 'config.s\u0301ecret'],
    [
      '\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24',
      'config.\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24',
    ],
  ])('matches %j in any letter case, spelling and as a substring', (key, path) => {
    expect(findRestrictedKeys({ [key]: 'x' }, PATTERNS, 'config')).toEqual([path]);
  });

  // Look-alike letters of other scripts (Unicode TS #39 skeletons), which NFKD leaves alone.
  it.each([
    ['p\u0430ssword', 'Cyrillic а'],
    ['\u0455ecret', 'Cyrillic ѕ'],
    ['t\u03bfken', 'Greek ο'],
    ['tok\u0435n', 'Cyrillic е'],
    ['\u0440\u0430\u0455\u0455\u051d\u043e\u0433d', 'Cyrillic р, а, ѕ, ԝ, о, г'],
    ['\u03a1\u0391SSWORD', 'Greek capital Ρ and Α'],
    ['\u0422OKEN', 'Cyrillic capital Т (its lower case т is a look-alike of ᴛ, not t)'],
    ['\u13a2oken', 'Cherokee Ꭲ'],
    ['db_\u0455\u0435cr\u0435t_ref', 'several Cyrillic letters inside a longer key'],
    ['passw0rd', 'the digit 0 for o'],
    ['t0ken', 'the digit 0 for o'],
    ['pa\u200bs\u0455word', 'a zero-width space and a Cyrillic ѕ together'],
  ])('matches %j (%s)', (key) => {
    expect(findRestrictedKeys({ [key]: 'x', nested: [{ [key]: 'y' }] }, PATTERNS, 'config')).toEqual([
      `config.${key}`,
      `config.nested[0].${key}`,
    ]);
  });

  it('compares look-alike spellings of patterns too, in either letter case', () => {
    expect(
      findRestrictedKeys(
        { API_KEY: 1, apikey: 2, 'ap\u0456_k\u0435y': 3, region: 4 },
        ['api_key', 'APIKEY'],
        'config',
      ),
    ).toEqual(['config.API_KEY', 'config.apikey', 'config.ap\u0456_k\u0435y']);
    expect(findRestrictedKeys({ smtp_host: 1, srntp_port: 2, port: 3 }, ['smtp'], 'config')).toEqual([
      'config.smtp_host',
      'config.srntp_port',
    ]);
  });

  // Skeletons map some ASCII to other ASCII (m → rn, 0 → O, 1 and I → l): none of that may turn an
  // ordinary key into a restricted one.
  it.each([
    ['replicas'],
    ['image'],
    ['owner'],
    ['data_sensitivity'],
    ['passage'],
    ['memory'],
    ['command'],
    ['timeout'],
    ['simulate'],
    ['delay_ms'],
    ['region'],
    ['host'],
    ['port'],
    ['username'],
    ['db_credentials_ref'],
    ['cost_center'],
    ['terminal'],
    ['modern'],
    ['tokyo_region'],
    ['secure'],
    ['sec_ret'],
    ['to_ken'],
    ['pass_word'],
    ['rn'],
    ['m'],
    ['I1l|'],
    ['100'],
    ['caf\u00e9'],
    ['\u65e5\u672c'],
    ['Stra\u00dfe'],
    ['\u0442\u043e\u043a\u0435\u043d'],
  ])('does not flag the ordinary key %j', (key) => {
    expect(findRestrictedKeys({ [key]: 'x', nested: { [key]: 'y' } }, PATTERNS, 'config')).toEqual([]);
  });

  it('matches patterns given in any letter case', () => {
    expect(findRestrictedKeys({ password: 1, token: 2 }, ['PassWord'], 'config')).toEqual([
      'config.password',
    ]);
  });

  it('walks arrays and names the index', () => {
    expect(findRestrictedKeys({ items: [{ Token: 'x' }] }, PATTERNS, 'config')).toEqual([
      'config.items[0].Token',
    ]);
    expect(
      findRestrictedKeys({ items: [{ name: 'a' }, { name: 'b', Token: 'x' }] }, PATTERNS, 'config'),
    ).toEqual(['config.items[1].Token']);
  });

  it('walks nested arrays and a top-level array', () => {
    expect(findRestrictedKeys({ matrix: [[{ ok: 1 }, { secret: 1 }]] }, PATTERNS, 'config')).toEqual([
      'config.matrix[0][1].secret',
    ]);
    expect(findRestrictedKeys([{ token: 1 }, 'password'], PATTERNS, 'config')).toEqual(['config[0].token']);
  });

  it('names each offending path, including one nested under another', () => {
    const value = {
      db: { host: 'h', password: 'p' },
      secrets: { token: 't', other: 1 },
      sidecars: [{ env: [{ name: 'A' }, { apiSecret: 'x' }] }],
      Token: 'x',
    };
    expect(findRestrictedKeys(value, PATTERNS, 'config')).toEqual([
      'config.db.password',
      'config.secrets',
      'config.secrets.token',
      'config.sidecars[0].env[1].apiSecret',
      'config.Token',
    ]);
  });

  it('uses the given prefix', () => {
    expect(findRestrictedKeys({ token: 1 }, PATTERNS, 'tags')).toEqual(['tags.token']);
  });

  it.each([
    ['passage'],
    ['pass'],
    ['passwd'],
    ['pwd'],
    ['secre'],
    ['tok'],
    ['tokn'],
    ['description'],
    ['sec_ret'],
  ])('does not flag %s', (key) => {
    expect(findRestrictedKeys({ [key]: 'x', nested: { [key]: 'y' } }, PATTERNS, 'config')).toEqual([]);
  });

  it('looks at keys, not values', () => {
    expect(
      findRestrictedKeys(
        { description: 'the password is a secret token', list: ['token'] },
        PATTERNS,
        'config',
      ),
    ).toEqual([]);
  });

  it.each([[null], [undefined], [42], ['password'], [true], [[]], [{}]])('finds nothing in %p', (value) => {
    expect(findRestrictedKeys(value, PATTERNS, 'config')).toEqual([]);
  });

  it('finds nothing without patterns', () => {
    expect(findRestrictedKeys({ password: 1, token: 2 }, [], 'config')).toEqual([]);
  });
});

describe('evaluateServiceTags', () => {
  it('accepts tags that satisfy every policy', () => {
    expect(evaluateServiceTags(okTags, defaults)).toEqual([]);
    expect(evaluateServiceTags({ ...okTags, cost_center: 'cc-1' }, defaults)).toEqual([]);
  });

  it.each([
    ['missing', {}],
    ['empty', { owner: '' }],
    ['whitespace only', { owner: ' \t\n ' }],
    ['a number', { owner: 42 }],
    ['null', { owner: null }],
    ['an object', { owner: { name: 'alice' } }],
  ])('refuses an owner tag that is %s', (_what, owner) => {
    const violations = evaluateServiceTags({ data_sensitivity: 'internal', ...owner }, defaults);
    expect(violations).toEqual([
      {
        rule: 'mandatory_tags',
        field: 'tags.owner',
        message: expect.stringContaining("'owner'"),
        hint: expect.stringContaining('"owner"'),
      },
    ]);
    expectWellFormed(violations);
  });

  it('reports each missing mandatory tag once (a missing tag is not also a value violation)', () => {
    const violations = evaluateServiceTags({}, defaults);
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['mandatory_tags', 'tags.owner'],
      ['mandatory_tags', 'tags.data_sensitivity'],
    ]);
    expectWellFormed(violations);
  });

  it.each([['public'], ['internal'], ['confidential'], ['restricted']])(
    'accepts data_sensitivity %s',
    (value) => {
      expect(evaluateServiceTags({ owner: 'alice', data_sensitivity: value }, defaults)).toEqual([]);
    },
  );

  it.each([['secretive'], ['Internal'], [' internal'], ['internal ']])(
    'refuses data_sensitivity %p',
    (value) => {
      const violations = evaluateServiceTags({ owner: 'alice', data_sensitivity: value }, defaults);
      expect(violations).toEqual([
        {
          rule: 'allowed_values',
          field: 'tags.data_sensitivity',
          message: expect.stringContaining("'data_sensitivity'"),
          hint: 'use one of: public, internal, confidential, restricted',
        },
      ]);
    },
  );

  it('refuses a non-string value of a tag with allowed values', () => {
    const violations = evaluateServiceTags({ owner: 'alice', data_sensitivity: ['internal'] }, defaults);
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['mandatory_tags', 'tags.data_sensitivity'],
      ['allowed_values', 'tags.data_sensitivity'],
    ]);
  });

  it('refuses restricted keys in tags', () => {
    const violations = evaluateServiceTags({ ...okTags, db_Password: 'hunter2' }, defaults);
    expect(violations).toEqual([
      {
        rule: 'restricted_config_keys',
        field: 'tags.db_Password',
        message: expect.stringContaining("'tags.db_Password'"),
        hint: expect.stringMatching(RESTRICTED_HINT),
      },
    ]);
    expect(violations[0]!.message).toContain('password, secret, token');
  });

  it('reports every violation at once', () => {
    const violations = evaluateServiceTags(
      { owner: '   ', data_sensitivity: 'top-secret', api_token: 'x', extra: { secret: 1 } },
      defaults,
    );
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['mandatory_tags', 'tags.owner'],
      ['allowed_values', 'tags.data_sensitivity'],
      ['restricted_config_keys', 'tags.api_token'],
      ['restricted_config_keys', 'tags.extra.secret'],
    ]);
    expectWellFormed(violations);
  });

  it('applies only enabled policies', () => {
    const noMandatory = buildPolicySet(rowsWith({ mandatory_tags: { enabled: false } }));
    expect(evaluateServiceTags({ data_sensitivity: 'internal' }, noMandatory)).toEqual([]);
    const noValues = buildPolicySet(rowsWith({ allowed_values: { enabled: false } }));
    expect(evaluateServiceTags({ owner: 'a', data_sensitivity: 'anything' }, noValues)).toEqual([]);
    const noRestricted = buildPolicySet(rowsWith({ restricted_config_keys: { enabled: false } }));
    expect(evaluateServiceTags({ ...okTags, token: 'x' }, noRestricted)).toEqual([]);
    expect(evaluateServiceTags({ token: 'x' }, none)).toEqual([]);
  });

  it('uses the configured tag lists', () => {
    const custom = buildPolicySet(
      rowsWith({
        mandatory_tags: { config: { tags: ['owner', 'tier'] } },
        allowed_values: { config: { tag: 'tier', values: ['gold'] } },
      }),
    );
    expect(evaluateServiceTags({ owner: 'a', tier: 'gold' }, custom)).toEqual([]);
    expect(evaluateServiceTags({ owner: 'a', tier: 'silver' }, custom).map((v) => v.field)).toEqual([
      'tags.tier',
    ]);
  });
});

describe('evaluateEnvironment', () => {
  it.each([['dev'], ['staging'], ['prod']])('accepts tier %s', (tier) => {
    expect(evaluateEnvironment({ tier }, defaults)).toEqual([]);
    expect(evaluateEnvironment({ tier, config: { replicas: 2, region: 'eu' } }, defaults)).toEqual([]);
  });

  it.each([['qa'], ['Prod'], ['production'], ['']])('refuses unknown tier %p', (tier) => {
    const violations = evaluateEnvironment({ tier }, defaults);
    expect(violations).toEqual([
      {
        rule: 'promotion_order',
        field: 'tier',
        message: `tier '${tier}' is not part of the promotion order`,
        hint: 'use one of: dev, staging, prod',
      },
    ]);
  });

  it('accepts any tier without a promotion order policy', () => {
    expect(
      evaluateEnvironment({ tier: 'qa' }, buildPolicySet(rowsWith({ promotion_order: { enabled: false } }))),
    ).toEqual([]);
  });

  it('refuses restricted config keys, naming the path', () => {
    const violations = evaluateEnvironment(
      { tier: 'dev', config: { db: { host: 'h', Password: 'p' } } },
      defaults,
    );
    expect(violations).toEqual([
      {
        rule: 'restricted_config_keys',
        field: 'config.db.Password',
        message: expect.stringContaining("'config.db.Password'"),
        hint: expect.stringMatching(RESTRICTED_HINT),
      },
    ]);
  });

  it('reports an unknown tier and restricted config together', () => {
    const violations = evaluateEnvironment({ tier: 'qa', config: { items: [{ Token: 'x' }] } }, defaults);
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['promotion_order', 'tier'],
      ['restricted_config_keys', 'config.items[0].Token'],
    ]);
    expectWellFormed(violations);
  });
});

describe('evaluateDeploymentConfig', () => {
  it('accepts no config and clean config', () => {
    expect(evaluateDeploymentConfig(undefined, defaults)).toEqual([]);
    expect(evaluateDeploymentConfig({}, defaults)).toEqual([]);
    expect(
      evaluateDeploymentConfig({ image: 'app:1', env: [{ name: 'PASSAGE', value: 'password' }] }, defaults),
    ).toEqual([]);
  });

  it('refuses every restricted key, at any depth', () => {
    const violations = evaluateDeploymentConfig(
      { env: [{ name: 'A', secretValue: 'y' }], auth: { bearer_token: 'x' } },
      defaults,
    );
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['restricted_config_keys', 'config.env[0].secretValue'],
      ['restricted_config_keys', 'config.auth.bearer_token'],
    ]);
    expectWellFormed(violations);
  });

  it('combines the patterns of every enabled restricted_config_keys policy', () => {
    const extra: StoredPolicy = {
      name: 'more_restricted',
      kind: 'restricted_config_keys',
      enabled: true,
      config: { patterns: ['ApiKey'] },
    };
    const policies = buildPolicySet([...defaultRows(), extra]);
    expect(evaluateDeploymentConfig({ apikey: 1, token: 2 }, policies).map((v) => v.field)).toEqual([
      'config.apikey',
      'config.token',
    ]);
    expect(evaluateDeploymentConfig({ apikey: 1 }, defaults)).toEqual([]);
  });

  it('allows anything when the policy is disabled', () => {
    expect(
      evaluateDeploymentConfig(
        { password: 'x' },
        buildPolicySet(rowsWith({ restricted_config_keys: { enabled: false } })),
      ),
    ).toEqual([]);
  });
});

describe('prerequisiteTier', () => {
  it.each([
    ['dev', null],
    ['staging', 'dev'],
    ['prod', 'staging'],
    ['qa', null],
  ])('the tier before %s is %p', (tier, before) => {
    expect(prerequisiteTier(tier, defaults)).toBe(before);
  });

  it('follows a custom order', () => {
    const custom = buildPolicySet(
      rowsWith({ promotion_order: { config: { tiers: ['sandbox', 'qa', 'live'] } } }),
    );
    expect(prerequisiteTier('sandbox', custom)).toBeNull();
    expect(prerequisiteTier('qa', custom)).toBe('sandbox');
    expect(prerequisiteTier('live', custom)).toBe('qa');
    expect(prerequisiteTier('prod', custom)).toBeNull();
  });

  it('is null without a promotion order policy', () => {
    expect(prerequisiteTier('prod', none)).toBeNull();
  });
});

describe('checkPromotionOrder', () => {
  // The tiers a version succeeded in: when the prerequisite is one of them, it succeeded long ago.
  const check = (tier: string, succeededTiers: string[], candidates: string[] = []) => {
    const before = prerequisiteTier(tier, defaults);
    const succeededSince = before !== null && succeededTiers.includes(before) ? new Date(0) : null;
    return checkPromotionOrder({ version: '1.2.3', tier, succeededSince, candidates }, defaults);
  };

  it('lets anything go to dev: it has no prerequisite', () => {
    expect(check('dev', [])).toBeNull();
  });

  it('sends a version to staging only after it succeeded in dev', () => {
    expect(check('staging', ['dev'])).toBeNull();
    expect(check('staging', ['dev'], ['dev-eu'])).toBeNull();
    expect(check('staging', ['prod'], ['dev-eu'])).not.toBeNull();
    expect(check('staging', [], ['dev-eu'])).toEqual({
      rule: 'promotion_order',
      field: 'version',
      message: "version '1.2.3' has not succeeded in tier 'dev', which comes before 'staging'",
      hint: "deploy version '1.2.3' to environment 'dev-eu' (tier dev) first",
    });
  });

  it('sends a version to prod only after it succeeded in staging (dev is not enough)', () => {
    expect(check('prod', ['staging'])).toBeNull();
    expect(check('prod', ['dev', 'staging'])).toBeNull();
    const violation = check('prod', ['dev'], ['staging-1', 'staging-2']);
    expect(violation).toEqual({
      rule: 'promotion_order',
      field: 'version',
      message: "version '1.2.3' has not succeeded in tier 'staging', which comes before 'prod'",
      hint: "deploy version '1.2.3' to environment 'staging-1' or 'staging-2' (tier staging) first",
    });
  });

  it('says to provision an environment when there is no candidate', () => {
    const violation = check('prod', []);
    expect(violation?.hint).toBe(
      "deploy version '1.2.3' to an environment of tier 'staging' (provision one first) first",
    );
    expect(violation?.hint).toContain('provision one');
  });

  it('does not check without a promotion order policy, or for a tier outside it', () => {
    expect(
      checkPromotionOrder({ version: '1', tier: 'prod', succeededSince: null, candidates: [] }, none),
    ).toBeNull();
    expect(check('qa', [])).toBeNull();
  });
});

describe('checkPromotionOrder with a promotion gate (soak)', () => {
  const gated = buildPolicySet([
    ...DEFAULT_POLICIES.map((p) => ({ ...p, enabled: true })),
    {
      name: 'promotion_gates',
      kind: 'promotion_gates',
      enabled: true,
      config: { gates: [{ tier: 'staging', soak: '1h' }] },
    },
  ]);
  const since = new Date('2026-12-01T10:00:00.000Z');
  const at = (iso: string) =>
    checkPromotionOrder(
      { version: '1.2.3', tier: 'prod', succeededSince: since, candidates: [], now: new Date(iso) },
      gated,
    );

  it('counts a version as promoted out of a gated tier only once it soaked there, and says from when', () => {
    expect(at('2026-12-01T10:59:59.999Z')).toEqual({
      rule: 'promotion_order',
      field: 'version',
      message:
        "version '1.2.3' has soaked in tier 'staging' since 2026-12-01T10:00:00.000Z; the promotion gate asks for 3600s: it may go to 'prod' from 2026-12-01T11:00:00.000Z",
      hint: 'wait until 2026-12-01T11:00:00.000Z, or release it (POST /api/services/:id/releases waits for the soak)',
    });
    expect(at('2026-12-01T11:00:00.000Z')).toBeNull();
  });

  it('gates only the tier it names: dev to staging needs no soak', () => {
    expect(
      checkPromotionOrder(
        { version: '1', tier: 'staging', succeededSince: new Date(), candidates: [] },
        gated,
      ),
    ).toBeNull();
    expect(soakSeconds('staging', gated)).toBe(3600);
    expect(soakSeconds('dev', gated)).toBe(0);
  });
});

describe('approvalRequirement', () => {
  it('asks for the configured approvals in the configured tier only', () => {
    expect(approvalRequirement('prod', defaults)).toEqual({ required: 1, timeoutSeconds: 86_400 });
    expect(approvalRequirement('staging', defaults)).toEqual({ required: 0, timeoutSeconds: 0 });
    expect(approvalRequirement('dev', defaults)).toEqual({ required: 0, timeoutSeconds: 0 });
  });

  it('asks for nothing when the policy is disabled or absent', () => {
    expect(
      approvalRequirement('prod', buildPolicySet(rowsWith({ prod_approvals: { enabled: false } }))),
    ).toEqual({
      required: 0,
      timeoutSeconds: 0,
    });
    expect(approvalRequirement('prod', none)).toEqual({ required: 0, timeoutSeconds: 0 });
  });

  it.each([
    [{ tier: 'prod', required: 2, timeout: '30m' }, 'prod', { required: 2, timeoutSeconds: 1800 }],
    [{ tier: 'prod', required: 3, timeout: 900 }, 'prod', { required: 3, timeoutSeconds: 900 }],
    [{ tier: 'live', required: 1, timeout: '7d' }, 'live', { required: 1, timeoutSeconds: 604_800 }],
    [{ tier: 'live', required: 1, timeout: '7d' }, 'prod', { required: 0, timeoutSeconds: 0 }],
  ])('config %j for tier %s gives %j', (config, tier, expected) => {
    expect(approvalRequirement(tier, buildPolicySet(rowsWith({ prod_approvals: { config } })))).toEqual(
      expected,
    );
  });
});

describe('durationSeconds', () => {
  it.each<[string | number, number]>([
    ['24h', 86_400],
    ['30m', 1800],
    ['2s', 2],
    ['7d', 604_800],
    ['1d', 86_400],
    ['90s', 90],
    ['1500ms', 2],
    ['2000ms', 2],
    ['1000ms', 1],
    ['1s', 1],
    ['365d', 31_536_000],
    [1, 1],
    [45, 45],
    [86_400, 86_400],
    [31_536_000, 31_536_000],
  ])('%p is %d seconds', (value, seconds) => {
    expect(durationSeconds(value)).toBe(seconds);
  });

  it.each<[string | number]>([
    ['24'],
    ['h'],
    ['1.5h'],
    ['24H'],
    [' 24h'],
    ['24h '],
    ['-1s'],
    ['1w'],
    [''],
    [1.5],
  ])('refuses %p', (value) => {
    expect(() => durationSeconds(value)).toThrow(/not a duration/);
  });

  // Below a second used to be rounded up to 1 s without a word; past a year overflows the int
  // column the deployment keeps it in.
  it.each<[string | number]>([
    ['0s'],
    ['0ms'],
    ['100ms'],
    ['999ms'],
    [0],
    ['366d'],
    ['9999999d'],
    [31_536_001],
  ])('refuses %p: not from 1 s to a year', (value) => {
    expect(() => durationSeconds(value)).toThrow(/not a duration between 1 s and a year/);
  });
});

describe('buildPolicySet', () => {
  it('builds the shipped policies', () => {
    expect(defaults).toEqual({
      mandatoryTags: [{ tags: ['owner', 'data_sensitivity'] }],
      allowedValues: [
        { tag: 'data_sensitivity', values: ['public', 'internal', 'confidential', 'restricted'] },
      ],
      restrictedKeys: [{ patterns: ['password', 'secret', 'token'] }],
      promotionOrder: { tiers: ['dev', 'staging', 'prod'] },
      prodApprovals: { tier: 'prod', required: 1, timeout: '24h' },
      autoRollback: null,
      promotionGates: null,
      deployFreeze: null,
    });
  });

  it('is empty without rows', () => {
    expect(none).toEqual({
      mandatoryTags: [],
      allowedValues: [],
      restrictedKeys: [],
      promotionOrder: null,
      prodApprovals: null,
      autoRollback: null,
      promotionGates: null,
      deployFreeze: null,
    });
  });

  it('builds the v2 kinds: auto_rollback, promotion_gates, deploy_freeze', () => {
    const set = buildPolicySet([
      { name: 'auto_rollback', kind: 'auto_rollback', enabled: true, config: { tiers: ['prod'] } },
      {
        name: 'promotion_gates',
        kind: 'promotion_gates',
        enabled: true,
        config: { gates: [{ tier: 'staging', soak: '2h' }] },
      },
      {
        name: 'deploy_freeze',
        kind: 'deploy_freeze',
        enabled: false,
        config: { windows: [], tiers: ['prod'] },
      },
    ]);
    expect(set).toMatchObject({
      autoRollback: { tiers: ['prod'] },
      promotionGates: { gates: [{ tier: 'staging', soak: '2h' }] },
      deployFreeze: null,
    });
  });

  it.each<[PolicyKind, Partial<ReturnType<typeof buildPolicySet>>]>([
    ['mandatory_tags', { mandatoryTags: [] }],
    ['allowed_values', { allowedValues: [] }],
    ['restricted_config_keys', { restrictedKeys: [] }],
    ['promotion_order', { promotionOrder: null }],
    ['prod_approvals', { prodApprovals: null }],
  ])('skips a disabled %s row', (name, cleared) => {
    expect(buildPolicySet(rowsWith({ [name]: { enabled: false } }))).toEqual({ ...defaults, ...cleared });
  });

  it('does not even parse the config of a disabled row', () => {
    expect(() =>
      buildPolicySet(rowsWith({ promotion_order: { enabled: false, config: { tiers: 'not-a-list' } } })),
    ).not.toThrow();
  });

  it('ignores kinds it does not know', () => {
    const unknown: StoredPolicy[] = [
      { name: 'quota', kind: 'quota', enabled: true, config: { max: 3 } },
      { name: 'zzz', kind: 'MANDATORY_TAGS', enabled: true, config: { tags: ['x'] } },
      { name: 'weird', kind: 'weird', enabled: true, config: null },
    ];
    expect(buildPolicySet([...defaultRows(), ...unknown])).toEqual(defaults);
  });

  it('keeps every list-like policy but only the first (by name) promotion order and approvals', () => {
    const rows: StoredPolicy[] = [
      ...defaultRows(),
      { name: 'a_order', kind: 'promotion_order', enabled: true, config: { tiers: ['x', 'y'] } },
      {
        name: 'a_approvals',
        kind: 'prod_approvals',
        enabled: true,
        config: { tier: 'y', required: 2, timeout: 60 },
      },
      { name: 'b_tags', kind: 'mandatory_tags', enabled: true, config: { tags: ['cost_center'] } },
    ];
    const set = buildPolicySet(rows);
    expect(set.promotionOrder).toEqual({ tiers: ['x', 'y'] });
    expect(set.prodApprovals).toEqual({ tier: 'y', required: 2, timeout: 60 });
    expect(set.mandatoryTags).toEqual([{ tags: ['cost_center'] }, { tags: ['owner', 'data_sensitivity'] }]);
  });
});

describe('redactRestricted', () => {
  it('replaces the value of every restricted key, at any depth, in a deep copy', () => {
    const input = {
      user: 'app',
      password: 'hunter2',
      nested: { apiToken: { deep: 'x' }, region: 'eu' },
      list: [{ Secret: 's', ok: 1 }, 'token', [{ TOKEN: 't' }]],
      passage: 'kept',
      count: 3,
      none: null,
    };
    const snapshot = structuredClone(input);
    const out = redactRestricted(input, PATTERNS) as typeof input;
    expect(out).toEqual({
      user: 'app',
      password: '[redacted]',
      nested: { apiToken: '[redacted]', region: 'eu' },
      list: [{ Secret: '[redacted]', ok: 1 }, 'token', [{ TOKEN: '[redacted]' }]],
      passage: 'kept',
      count: 3,
      none: null,
    });
    expect(input).toEqual(snapshot);
    expect(
      redactRestricted({ 'pass\u200bword': 'hunter2', '\uff34\uff2f\uff2b\uff25\uff2e': 't' }, PATTERNS),
    ).toEqual({
      'pass\u200bword': '[redacted]',
      '\uff34\uff2f\uff2b\uff25\uff2e': '[redacted]',
    });
    // The same matcher as findRestrictedKeys: look-alike letters are redacted too, ordinary keys kept.
    expect(
      redactRestricted(
        {
          'p\u0430ssword': 'hunter2',
          '\u0455ecret': { a: 1 },
          't\u03bfken': 't',
          image: 'nginx',
          memory: '1Gi',
        },
        PATTERNS,
      ),
    ).toEqual({
      'p\u0430ssword': '[redacted]',
      '\u0455ecret': '[redacted]',
      't\u03bfken': '[redacted]',
      image: 'nginx',
      memory: '1Gi',
    });
    expect(out).not.toBe(input);
    expect(out.nested).not.toBe(input.nested);
    expect(out.list).not.toBe(input.list);
  });

  it.each([[null], [undefined], [7], ['password'], [false]])('returns %p unchanged', (value) => {
    expect(redactRestricted(value, PATTERNS)).toBe(value);
  });

  it('redacts nothing without patterns', () => {
    expect(redactRestricted({ password: 'x' }, [])).toEqual({ password: 'x' });
  });
});

describe('POLICY_CONFIG_SCHEMAS', () => {
  const long = (n: number): string => 'a'.repeat(n);

  it.each(DEFAULT_POLICIES.map((p) => [p.kind, p.config] as const))(
    'accepts the shipped %s config',
    (kind, config) => {
      expect(POLICY_CONFIG_SCHEMAS[kind].safeParse(config).success).toBe(true);
    },
  );

  it.each<[PolicyKind, unknown]>([
    ['mandatory_tags', { tags: [] }],
    ['mandatory_tags', { tags: [long(63)] }],
    ['allowed_values', { tag: 't', values: ['v'] }],
    ['restricted_config_keys', { patterns: [] }],
    ['promotion_order', { tiers: ['dev'] }],
    ['promotion_order', { tiers: ['a-1', 'b2', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] }],
    ['prod_approvals', { tier: 'prod', required: 10, timeout: 31_536_000 }],
    ['prod_approvals', { tier: 'prod', required: 1, timeout: '1000ms' }],
    ['prod_approvals', { tier: 'prod', required: 1, timeout: '1s' }],
    ['prod_approvals', { tier: 'prod', required: 1, timeout: '365d' }],
  ])('accepts the boundary %s config %j', (kind, config) => {
    expect(POLICY_CONFIG_SCHEMAS[kind].safeParse(config).success).toBe(true);
  });

  it.each<[PolicyKind, string, unknown]>([
    ['mandatory_tags', 'no tags', {}],
    ['mandatory_tags', 'tags not a list', { tags: 'owner' }],
    ['mandatory_tags', 'an empty tag', { tags: [''] }],
    ['mandatory_tags', 'a tag of 64 chars', { tags: [long(64)] }],
    ['mandatory_tags', '51 tags', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }],
    ['mandatory_tags', 'an unknown key', { tags: ['owner'], extra: true }],
    ['mandatory_tags', 'null', null],
    ['allowed_values', 'no tag', { values: ['a'] }],
    ['allowed_values', 'an empty tag', { tag: '', values: ['a'] }],
    ['allowed_values', 'no values', { tag: 't', values: [] }],
    ['allowed_values', 'a number value', { tag: 't', values: [1] }],
    ['allowed_values', 'an empty value', { tag: 't', values: [''] }],
    ['allowed_values', 'a value of 256 chars', { tag: 't', values: [long(256)] }],
    ['allowed_values', 'an unknown key', { tag: 't', values: ['a'], extra: 1 }],
    ['restricted_config_keys', 'no patterns', {}],
    ['restricted_config_keys', 'patterns not a list', { patterns: 'token' }],
    ['restricted_config_keys', 'an empty pattern', { patterns: [''] }],
    ['restricted_config_keys', 'an unknown key', { patterns: ['token'], extra: 1 }],
    ['promotion_order', 'no tiers', { tiers: [] }],
    ['promotion_order', 'an upper-case tier', { tiers: ['Dev'] }],
    ['promotion_order', 'a tier starting with a digit', { tiers: ['1dev'] }],
    ['promotion_order', 'a tier with a space', { tiers: ['dev staging'] }],
    ['promotion_order', 'a repeated tier', { tiers: ['dev', 'staging', 'dev'] }],
    ['promotion_order', '11 tiers', { tiers: Array.from({ length: 11 }, (_, i) => `t${i}`) }],
    ['promotion_order', 'an unknown key', { tiers: ['dev'], extra: 1 }],
    ['prod_approvals', 'no tier', { required: 1, timeout: '24h' }],
    ['prod_approvals', 'an empty tier', { tier: '', required: 1, timeout: '24h' }],
    ['prod_approvals', 'zero approvals', { tier: 'prod', required: 0, timeout: '24h' }],
    ['prod_approvals', '11 approvals', { tier: 'prod', required: 11, timeout: '24h' }],
    ['prod_approvals', 'a fractional count', { tier: 'prod', required: 1.5, timeout: '24h' }],
    ['prod_approvals', 'a count as a string', { tier: 'prod', required: '1', timeout: '24h' }],
    ['prod_approvals', 'a timeout without unit', { tier: 'prod', required: 1, timeout: '24' }],
    ['prod_approvals', 'a timeout with a space', { tier: 'prod', required: 1, timeout: '24 h' }],
    ['prod_approvals', 'a fractional timeout', { tier: 'prod', required: 1, timeout: '1.5h' }],
    ['prod_approvals', 'an unknown unit', { tier: 'prod', required: 1, timeout: '2w' }],
    ['prod_approvals', 'an 8-digit timeout', { tier: 'prod', required: 1, timeout: '12345678s' }],
    ['prod_approvals', 'a zero timeout', { tier: 'prod', required: 1, timeout: 0 }],
    ['prod_approvals', 'a timeout of 0s', { tier: 'prod', required: 1, timeout: '0s' }],
    ['prod_approvals', 'a timeout of 0ms', { tier: 'prod', required: 1, timeout: '0ms' }],
    ['prod_approvals', 'a timeout of 0.5s', { tier: 'prod', required: 1, timeout: '0.5s' }],
    ['prod_approvals', 'a timeout of 500ms', { tier: 'prod', required: 1, timeout: '500ms' }],
    ['prod_approvals', 'a timeout of 999ms', { tier: 'prod', required: 1, timeout: '999ms' }],
    ['prod_approvals', 'a timeout of 366d', { tier: 'prod', required: 1, timeout: '366d' }],
    ['prod_approvals', 'a timeout of 9999999d', { tier: 'prod', required: 1, timeout: '9999999d' }],
    [
      'prod_approvals',
      'a timeout that is neither string nor number',
      { tier: 'prod', required: 1, timeout: null },
    ],
    ['prod_approvals', 'a negative timeout', { tier: 'prod', required: 1, timeout: -5 }],
    ['prod_approvals', 'a timeout over a year', { tier: 'prod', required: 1, timeout: 31_536_001 }],
    ['prod_approvals', 'a fractional number timeout', { tier: 'prod', required: 1, timeout: 1.5 }],
    ['prod_approvals', 'an unknown key', { tier: 'prod', required: 1, timeout: '24h', extra: 1 }],
  ])('%s refuses %s', (kind, _what, config) => {
    expect(POLICY_CONFIG_SCHEMAS[kind].safeParse(config).success).toBe(false);
    // the same config, stored and enabled, cannot become a policy set either
    expect(() => buildPolicySet([{ name: kind, kind, enabled: true, config }])).toThrow();
  });
});

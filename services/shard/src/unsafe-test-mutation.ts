import type Database from "better-sqlite3";

/**
 * TEST-ONLY. A deliberate, realistic bug that the chaos self-test switches on
 * (`pnpm chaos --unsafe-shard-mutation lazy-applied-lsn`) to show END TO END
 * that its data checks catch a shard that breaks exactly-once. Off unless
 * LP_UNSAFE_TEST_MUTATION is set; never set it in production.
 *
 * "lazy-applied-lsn": the shard keeps applied_lsn in memory and writes it to
 * SQLite only on every LAZY_APPLIED_LSN_BATCHES-th batch that applies
 * something (an "optimisation" that saves a write per batch), while the data
 * is still written at once. A SIGKILL then loses the newest applied_lsn but
 * not the data, the restarted shard reports an older applied LSN, and the
 * LogPlayer re-delivers parts whose APPENDs are already in the data: tokens
 * appear twice. Nothing in the shard notices (its in-memory and "stored"
 * applied LSN agree), so only the data shows it.
 *
 * Applied once, when the store prepares its statements: the meta statements
 * are wrapped so reads of applied_lsn see the in-memory value and most writes
 * of it are dropped. The apply path itself is unchanged.
 */
export const UNSAFE_TEST_MUTATION_ENV = "LP_UNSAFE_TEST_MUTATION";
export const UNSAFE_TEST_MUTATIONS = ["lazy-applied-lsn"] as const;
export type UnsafeTestMutation = (typeof UNSAFE_TEST_MUTATIONS)[number];
/** lazy-applied-lsn writes applied_lsn on the first and then every this-many-th write. */
export const LAZY_APPLIED_LSN_BATCHES = 10;

const APPLIED_LSN = "applied_lsn";

/** The mutation named by LP_UNSAFE_TEST_MUTATION, undefined when unset; throws on an unknown name. */
export function unsafeTestMutationFromEnv(env: NodeJS.ProcessEnv = process.env): UnsafeTestMutation | undefined {
  const value = env[UNSAFE_TEST_MUTATION_ENV];
  if (value === undefined || value === "") return undefined;
  const known = UNSAFE_TEST_MUTATIONS.find((m) => m === value);
  if (known === undefined) {
    throw new Error(
      `${UNSAFE_TEST_MUTATION_ENV}=${JSON.stringify(value)} is not one of ${UNSAFE_TEST_MUTATIONS.join(", ")} (test-only; unset it)`,
    );
  }
  return known;
}

type Statement = Database.Statement<unknown[], unknown>;

interface MetaStatements {
  metaGet: Statement;
  metaPut: Statement;
}

/**
 * The statements unchanged, or with the mutation named in the environment
 * built in, announced on stderr (the process's log) as the store opens.
 */
export function withUnsafeTestMutation<S extends MetaStatements>(statements: S, mutation = unsafeTestMutationFromEnv()): S {
  if (mutation === undefined) return statements;
  process.stderr.write(
    `shard: UNSAFE TEST MUTATION ON: ${UNSAFE_TEST_MUTATION_ENV}=${mutation}: this shard breaks exactly-once on purpose ` +
      "(chaos self-test only, never in production)\n",
  );
  return withLazyAppliedLsn(statements, LAZY_APPLIED_LSN_BATCHES);
}

function withLazyAppliedLsn<S extends MetaStatements>(statements: S, everyWrites: number): S {
  const { metaGet, metaPut } = statements;
  let inMemory: unknown;
  let writes = 0;
  const get = (...params: unknown[]): unknown =>
    params[0] === APPLIED_LSN && inMemory !== undefined ? { value: inMemory } : metaGet.get(...params);
  const run = (...params: unknown[]): Database.RunResult => {
    if (params[0] !== APPLIED_LSN) return metaPut.run(...params);
    inMemory = params[1];
    const persist = writes % everyWrites === 0;
    writes += 1;
    return persist ? metaPut.run(...params) : { changes: 0, lastInsertRowid: 0 };
  };
  return { ...statements, metaGet: replaceMethod(metaGet, "get", get), metaPut: replaceMethod(metaPut, "run", run) };
}

/** `target` with one method replaced; every other property is the target's own (methods bound to it). */
function replaceMethod<T extends object>(target: T, method: keyof T, replacement: unknown): T {
  return new Proxy(target, {
    get(object, property) {
      if (property === method) return replacement;
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === "function" ? value.bind(object) : value;
    },
  });
}

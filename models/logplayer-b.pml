/*
 * Model B: our addition. Shards decide every part with (lsn, prevLsn)
 * atomically with their durable state, so exactly-once in order holds
 * whatever the LogPlayers do.
 *
 * Two LogPlayers run at once. Each one is as unconstrained as we can make
 * it: it may send any part of its own dispatch sequence, in any order, any
 * number of times, in batches of one or two, on a connection opened with a
 * hello (which tells it the shard's applied LSN); it may pause for any time
 * (a zombie: its batches stay in flight), crash and restart (placing its
 * dummies differently), and its connections may break (in-flight batches
 * lost). The one thing a LogPlayer cannot do is lie about the log: a part
 * (lsn, prevLsn) is truthful, i.e. the log routes no real entry to the shard
 * strictly between prevLsn and lsn, a dummy is never at the LSN of a real
 * entry for that shard, and prevLsn is the previous element of that player's
 * own dispatch sequence for the shard (real or dummy), or the applied LSN
 * its hello returned when lsn is the first element after it. That is what
 * the dispatcher computes from the log, whatever its queues do.
 *
 * The shard (decideApply in packages/delivery/src/apply-decision.ts):
 *   lsn <= applied                 -> duplicate, nothing changes
 *   prevLsn <= applied < lsn       -> apply (mutations, or none for a dummy)
 *                                     and set applied = lsn, one transaction
 *   otherwise                      -> gap, the rest of the batch is ignored
 *
 * Safety (assertions in applyPart): each real entry routed to a shard is
 * applied exactly once and in log order; a dummy never jumps over a real
 * entry that is not applied yet.
 *
 * Variants (-D): NO_PREV_CHECK (shard applies anything with lsn > applied);
 * NON_ATOMIC (data and applied LSN are two commits; a crash may fall
 * between them); SEND_TIME_PREV (prevLsn is the last part this player sent
 * on the stream, as TargetQueue.#pump assigned it before prevLsn moved to
 * queue time, and the player's queue may skip a part: the shard's check can
 * no longer see the skip).
 * Bounds (-D): FAILS (failures of each kind, default 1).
 */

#define NE 4            /* log entries, LSN 1..NE */
#define NT 2            /* shards */
#define NP 2            /* LogPlayers */
#define CHANNEL_BATCHES_MAX 1  /* enough: players already send in any order */
#ifndef FAILS
#define FAILS 1
#endif

#define NONE 255

/* Routing as in model A: entries 1 and 4 touch both shards, 2 only shard 0,
 * 3 only shard 1. So a dummy can sit at LSN 3 for shard 0, at 2 for shard 1. */
#define ROUTE(e) ((e) == 1 -> 3 : ((e) == 2 -> 1 : ((e) == 3 -> 2 : 3)))
#define ROUTED(e, t) (((ROUTE(e)) >> (t)) & 1)
#define DUMMY_SLOT(t) ((t) == 0 -> 3 : 2)

/* ---- LogPlayers (volatile) ---- */
bit dummyPlaced[NP * NT];   /* player p has a dummy at DUMMY_SLOT(t) for shard t */
#ifdef SEND_TIME_PREV
byte lastSent[NP * NT];     /* LSN of the last part sent on the stream; NONE: no stream */
#endif
chan toShard[NP * NT] = [CHANNEL_BATCHES_MAX] of { byte, byte, byte, byte, byte };  /* n, lsn1, prev1, lsn2, prev2 */

/* ---- shards (durable) ---- */
byte applied[NT];           /* appliedLsn as persisted */
byte dataLast[NT];          /* ghost: last real LSN whose mutations are in the data */
#ifdef NON_ATOMIC
byte appliedMem[NT];        /* appliedLsn in memory, persisted by a second commit */
bit persistPending[NT];
#define APPLIED(t) appliedMem[t]
#else
#define APPLIED(t) applied[t]
#endif

byte shardCrashes = 0;
byte connBreaks = 0;
byte playerCrashes = 0;

#define IN_SEQ(p, t, x) (ROUTED(x, t) || (dummyPlaced[(p) * NT + (t)] && (x) == DUMMY_SLOT(t)))

/* First real entry for shard t after LSN a (NE + 1 if none). */
inline nextReal(t, a, out) {
  out = a + 1;
  do
  :: out <= NE && !ROUTED(out, t) -> out++
  :: else -> break
  od
}

/* The element of player p's sequence for t before x (0 if none). */
inline predecessor(p, t, x, out) {
  out = x - 1;
  do
  :: out > 0 && !IN_SEQ(p, t, out) -> out--
  :: else -> break
  od
}

/* The element of player p's sequence for t after x (NONE if none). */
inline successor(p, t, x, out) {
  out = x + 1;
  do
  :: out <= NE && !IN_SEQ(p, t, out) -> out++
  :: else -> break
  od;
  if
  :: out > NE -> out = NONE
  :: else -> skip
  fi
}

inline clearChannel(c) {
  do
  :: nempty(toShard[c]) -> toShard[c]?_, _, _, _, _
  :: empty(toShard[c]) -> break
  od;
  skip
}

/* ---------------- shard ---------------- */

/* decideApply + apply, one transaction; `gap` stops the batch. */
inline applyPart(t, lsn, prev) {
  nextReal(t, dataLast[t], expected);
  assert(expected > APPLIED(t));   /* nothing real hides below applied */
  if
  :: lsn <= APPLIED(t) -> skip     /* duplicate */
#ifdef NO_PREV_CHECK
  :: lsn > APPLIED(t) ->
#else
  :: prev <= APPLIED(t) && APPLIED(t) < lsn ->
#endif
    if
    :: ROUTED(lsn, t) ->
      printf("MSC: shard %d applies %d (prev %d, applied %d, expected %d)\n", t, lsn, prev, APPLIED(t), expected);
      assert(lsn == expected);     /* exactly once, in order */
      dataLast[t] = lsn
    :: else ->
      printf("MSC: shard %d applies dummy %d (prev %d, applied %d)\n", t, lsn, prev, APPLIED(t));
      assert(expected > lsn)       /* a dummy skips nothing real */
    fi;
    APPLIED(t) = lsn
  :: else -> gap = 1
  fi;
  expected = 0
}

inline receiveBatch(c, s) {
  toShard[c]?n, lsn1, prev1, lsn2, prev2;
  gap = 0;
  applyPart(s, lsn1, prev1);
  if
  :: n == 2 && !gap -> applyPart(s, lsn2, prev2)
  :: else -> skip
  fi;
#ifdef NON_ATOMIC
  persistPending[s] = (appliedMem[s] != applied[s]);
#endif
  n = 0; lsn1 = 0; prev1 = 0; lsn2 = 0; prev2 = 0; gap = 0
}

proctype Shard(byte t) {
  byte n, lsn1, prev1, lsn2, prev2, expected;
  bit gap;
end_shard:
  do
#ifdef NON_ATOMIC
  :: d_step { !persistPending[t] && nempty(toShard[t]) -> receiveBatch(t, t) }
  :: d_step { !persistPending[t] && nempty(toShard[NT + t]) -> receiveBatch(NT + t, t) }
  /* the second commit: the applied LSN catches up with the data */
  :: d_step { persistPending[t] -> applied[t] = appliedMem[t]; persistPending[t] = 0 }
#else
  :: d_step { nempty(toShard[t]) -> receiveBatch(t, t) }
  :: d_step { nempty(toShard[NT + t]) -> receiveBatch(NT + t, t) }
#endif
  od
}

/* ---------------- LogPlayer ---------------- */

/* Send a batch starting at x: (x, prev) then, if asked and there is one,
 * (successor, x). prev is x's predecessor in this player's sequence. */
inline sendFrom(p, t, x, two) {
  predecessor(p, t, x, prev);
  if
  :: two -> successor(p, t, x, next)
  :: else -> next = NONE
  fi;
  if
  :: next == NONE -> toShard[p * NT + t]!1, x, prev, 0, 0
  :: next != NONE -> toShard[p * NT + t]!2, x, prev, next, x
  fi;
  prev = 0; next = 0
}

/* One send: a batch starting at element X of player P's sequence for shard
 * T, of one part or (if TWO and there is a next element) two. */
#define SEND(P, T, X, TWO) \
  :: d_step { IN_SEQ(P, T, X) && nfull(toShard[(P) * NT + (T)]) -> sendFrom(P, T, X, TWO) }

/* A LogPlayer: any send at any time. Pausing is simply not being scheduled;
 * a crash (in Failures) loses its streams; a restart just sends again. */
#ifdef SEND_TIME_PREV
/* The stream's next part is any later element of the sequence (a skip is
 * the queue bug this variant allows); prevLsn is the last part sent. */
#define SEND_CHAIN(P, T, X) \
  :: d_step { lastSent[(P) * NT + (T)] != NONE && lastSent[(P) * NT + (T)] < (X) && IN_SEQ(P, T, X) \
       && nfull(toShard[(P) * NT + (T)]) -> \
       toShard[(P) * NT + (T)]!1, X, lastSent[(P) * NT + (T)], 0, 0; lastSent[(P) * NT + (T)] = X }

proctype Player(byte p) {
end_player:
  do
  /* hello: the stream starts from the shard's applied LSN */
  :: d_step { lastSent[p * NT] == NONE -> lastSent[p * NT] = applied[0] }
  :: d_step { lastSent[p * NT + 1] == NONE -> lastSent[p * NT + 1] = applied[1] }
  SEND_CHAIN(p, 0, 1) SEND_CHAIN(p, 0, 2) SEND_CHAIN(p, 0, 3) SEND_CHAIN(p, 0, 4)
  SEND_CHAIN(p, 1, 1) SEND_CHAIN(p, 1, 2) SEND_CHAIN(p, 1, 3) SEND_CHAIN(p, 1, 4)
  od
}
#else
proctype Player(byte p) {
  byte prev, next;
end_player:
  do
  SEND(p, 0, 1, 0) SEND(p, 0, 2, 0) SEND(p, 0, 3, 0) SEND(p, 0, 4, 0)
  SEND(p, 0, 1, 1) SEND(p, 0, 2, 1) SEND(p, 0, 3, 1)
  SEND(p, 1, 1, 0) SEND(p, 1, 2, 0) SEND(p, 1, 3, 0) SEND(p, 1, 4, 0)
  SEND(p, 1, 1, 1) SEND(p, 1, 2, 1) SEND(p, 1, 3, 1)
  od
}
#endif

/* ---------------- failures ---------------- */

inline shardCrash(t) {
  printf("MSC: shard %d crashes\n", t);
  shardCrashes++;
  clearChannel(t); clearChannel(NT + t);
#ifdef SEND_TIME_PREV
  lastSent[t] = NONE; lastSent[NT + t] = NONE;
#endif
#ifdef NON_ATOMIC
  appliedMem[t] = applied[t]; persistPending[t] = 0;
#endif
  skip
}

inline playerCrash(p) {
  printf("MSC: player %d crashes\n", p);
  playerCrashes++;
  clearChannel(p * NT); clearChannel(p * NT + 1);
#ifdef SEND_TIME_PREV
  lastSent[p * NT] = NONE; lastSent[p * NT + 1] = NONE;
#endif
  skip
}

inline connBreak(c) {
  printf("MSC: connection %d breaks\n", c);
  connBreaks++;
  clearChannel(c);
#ifdef SEND_TIME_PREV
  lastSent[c] = NONE;
#endif
  skip
}

proctype Failures() {
end_failures:
  do
  :: d_step { shardCrashes < FAILS -> shardCrash(0) }
  :: d_step { shardCrashes < FAILS -> shardCrash(1) }
  :: d_step { playerCrashes < FAILS -> playerCrash(0) }
  :: d_step { playerCrashes < FAILS -> playerCrash(1) }
  :: d_step { connBreaks < FAILS && nempty(toShard[0]) -> connBreak(0) }
  :: d_step { connBreaks < FAILS && nempty(toShard[1]) -> connBreak(1) }
  :: d_step { connBreaks < FAILS && nempty(toShard[2]) -> connBreak(2) }
  :: d_step { connBreaks < FAILS && nempty(toShard[3]) -> connBreak(3) }
  od
}

init {
  atomic {
    /* the two players start with different dummy placements */
    dummyPlaced[0] = 1; dummyPlaced[1] = 0;   /* player 0: dummy 3 for shard 0 */
    dummyPlaced[2] = 0; dummyPlaced[3] = 1;   /* player 1: dummy 2 for shard 1 */
#ifdef SEND_TIME_PREV
    lastSent[0] = NONE; lastSent[1] = NONE; lastSent[2] = NONE; lastSent[3] = NONE;
#endif
    run Shard(0);
    run Shard(1);
    run Player(0);
    run Player(1);
    run Failures()
  }
}

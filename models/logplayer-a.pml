/*
 * Model A: the paper's LogPlayer (arXiv 1911.11286, sections 2-3) with
 * targets that trust it. One LogPlayer: main fetcher, recovery fetchers,
 * dispatcher, one TargetQueue per target (states N/RF/FC/S, normal +
 * catch-up queues, a term), batching with one write in flight and a window
 * of sent-but-unacked batches, acks, a health checker, dummy entries.
 * Targets consume whatever arrives and persist "last consumed index"
 * atomically with the data; they check nothing.
 *
 * Atomicity: every LogPlayer action is one d_step. The TypeScript LogPlayer
 * is single-threaded (Node.js event loop), so each callback (a fetched entry,
 * a write completion, an ack, a stream error, a HelloReply) runs to
 * completion without interleaving; the concurrency that remains is between
 * the LogPlayer, the targets, the network and the failures, which is what
 * the processes below interleave.
 *
 * Failures: a target crashes (its stream is lost, it is down for a while,
 * its durable index survives) and restarts; a stream breaks (in-flight
 * batches and acks lost, the target stays up); the LogPlayer crashes (its
 * streams and all its memory lost) and restarts.
 *
 * State-space reductions (each keeps every behaviour a target can observe;
 * the arguments are in docs/model-checking.md):
 *  R1 no dead values: scratch variables are `hidden` and written before they
 *     are read within one d_step; freed queue, window and recovery slots are
 *     zeroed; a crashed LogPlayer's memory is reset to one canonical value.
 *  R2 a lost stream is suspended in the same step (no detection delay): what
 *     the LogPlayer does for that target between the loss and the detection
 *     reaches no target and suspend erases it. -DLATE_DETECTION models the
 *     delay (a separate health-checker step), to check this reduction.
 *  R3 the term: suspend retires the target's recovery streams (with the
 *     term, every later event of theirs is dropped), so a live recovery
 *     stream is always the current one and the term's value need not be
 *     stored. Without the term (-DNO_TERM) they run on and only stop when
 *     they see S.
 *  R4 no redundant state: currentIndex is mainNext - 1; the dummy counter
 *     counts modulo DUMMY_EVERY (as the code's #entriesSinceDummy); "stream
 *     up" is "queue not in S" (unless LATE_DETECTION); the count of consumed
 *     entries is implied by the consumed index and the assertions.
 *
 * Safety: assertions in consume() (each real entry routed to a target is
 * consumed exactly once and in log order; a dummy never jumps over an
 * unconsumed real entry nor moves the index back), plus `timeout ->
 * assert(allDone)`: the system never gets stuck before delivering everything.
 * Liveness: ltl eventuallyDone, checked with `pan -a -f` (weak fairness).
 *
 * Variants (-D): NO_TERM drops the term per target (the paper's first draft);
 * LATE_DETECTION (see R2).
 * Bounds (-D): FAILS (failures of each kind, default 1), TARGET_FAILS,
 * CONN_FAILS, PLAYER_FAILS; see check.sh.
 */

#define NE 4            /* log entries, LSN 1..NE */
#define NT 2            /* targets (shards) */
#define BATCH_MAX 2     /* entries per batch */
#define WINDOW_MAX 2    /* sent-unacked batches per target */
#define QUEUE_MAX 6     /* normal/catch-up queue capacity (NE + dummies) */
#define DUMMY_EVERY 2   /* a dummy round every DUMMY_EVERY main-stream entries */
#define DUMMY_LAG 1     /* ... for targets whose lastAck < currentIndex - DUMMY_LAG */
#ifndef FAILS
#define FAILS 1
#endif
#ifndef TARGET_FAILS
#define TARGET_FAILS FAILS  /* target crashes */
#endif
#ifndef CONN_FAILS
#define CONN_FAILS FAILS    /* broken streams */
#endif
#ifndef PLAYER_FAILS
#define PLAYER_FAILS FAILS  /* LogPlayer crashes */
#endif

#ifdef NO_TERM
#define RECOVERY_MAX 4  /* old streams run on: a pool, first free slot */
#else
#define RECOVERY_MAX NT /* R3: one live (current) stream per target, in slot t */
#endif

#define ST_N 0
#define ST_RF 1
#define ST_FC 2
#define ST_S 3

#define NONE 255
#define DUMMY_BIT 16    /* queue/batch item = lsn | DUMMY_BIT for a dummy */

/* Routing: which targets each entry touches (bit t = target t). Entries 1
 * and 4 touch both; 2 only target 0; 3 only target 1. */
#define ROUTE(e) ((e) == 1 -> 3 : ((e) == 2 -> 1 : ((e) == 3 -> 2 : 3)))
#define ROUTED(e, t) (((ROUTE(e)) >> (t)) & 1)
#define LAST_REAL_0 4   /* last real entry routed to target 0 */
#define LAST_REAL_1 4   /* ... to target 1 */

/* ---- LogPlayer memory (lost on a LogPlayer crash) ---- */
bit playerUp = 1;
byte mainNext = 1;           /* next LSN the main fetcher reads */
#define currentIndex (mainNext - 1)  /* last main-stream entry dispatched (R4) */
byte entriesSinceDummy = 0;  /* 0 .. DUMMY_EVERY - 1 */
byte qstate[NT];
byte lastAck[NT];
byte normalQ[NT * QUEUE_MAX];
byte normalLen[NT];
byte catchupQ[NT * QUEUE_MAX];
byte catchupLen[NT];
bit writeInFlight[NT];
byte windowLast[NT * WINDOW_MAX];  /* last LSN of each sent-unacked batch */
byte windowLen[NT];
bit recActive[RECOVERY_MAX];
byte recTarget[RECOVERY_MAX];
byte recPos[RECOVERY_MAX];
byte recEnd[RECOVERY_MAX];

/* ---- network: one stream per target, FIFO, lost when it breaks ---- */
chan toTarget[NT] = [WINDOW_MAX] of { byte, byte, byte };  /* count, item1, item2 */
chan toPlayer[NT] = [WINDOW_MAX] of { byte };              /* ack: last consumed */
#ifdef LATE_DETECTION
bit connUp[NT];              /* the stream is alive (the LogPlayer may not know yet) */
#define STREAM_UP(x) connUp[x]
#else
#define STREAM_UP(x) (qstate[x] != ST_S)  /* R2 */
#endif

/* ---- targets: durable state (a target keeps nothing else) ---- */
bit targetUp[NT];
byte consumed[NT];           /* last consumed index, persisted with the data */

/* ---- failure budgets ---- */
byte targetCrashes = 0;
byte connBreaks = 0;
byte playerCrashes = 0;

/* ---- scratch (R1): written before read inside one d_step, never stored ---- */
hidden byte tgt, tgt2, slot, idx, ackLsn, item1, item2, batchLen, lsn, expected;

/* With the assertions in consume() holding, the index reaching the last real
 * entry means every real entry was consumed, each exactly once. */
#define allDone (consumed[0] == LAST_REAL_0 && consumed[1] == LAST_REAL_1)

/* First real entry for target tq after LSN p (NE + 1 if none). */
inline nextReal(tq, p, out) {
  out = p + 1;
  do
  :: out <= NE && !ROUTED(out, tq) -> out++
  :: else -> break
  od
}

/* The stream to target tq is gone: batches and acks in flight are lost. */
inline clearStream(tq) {
  do
  :: nempty(toTarget[tq]) -> toTarget[tq]?_, _, _
  :: empty(toTarget[tq]) -> break
  od;
  do
  :: nempty(toPlayer[tq]) -> toPlayer[tq]?_
  :: empty(toPlayer[tq]) -> break
  od;
  skip  /* a d_step may not end in a loop's break */
}

/* ---------------- TargetQueue (Algorithm 1, 2) ---------------- */

inline push(tq, item, isNormal) {
  if
  :: qstate[tq] != ST_S ->
    if
    :: isNormal ->
      assert(normalLen[tq] < QUEUE_MAX);
      normalQ[tq * QUEUE_MAX + normalLen[tq]] = item; normalLen[tq]++
    :: else ->
      assert(catchupLen[tq] < QUEUE_MAX);
      catchupQ[tq * QUEUE_MAX + catchupLen[tq]] = item; catchupLen[tq]++
    fi
  :: else -> skip   /* suspended: dropped */
  fi
}

/* front(): the next item to send, or NONE; may move FC -> N. */
inline front(tq, out) {
  if
  :: (qstate[tq] == ST_RF || qstate[tq] == ST_FC) && catchupLen[tq] > 0 ->
    out = catchupQ[tq * QUEUE_MAX]
  :: qstate[tq] == ST_FC && catchupLen[tq] == 0 ->
    qstate[tq] = ST_N;
    out = (normalLen[tq] > 0 -> normalQ[tq * QUEUE_MAX] : NONE)
  :: qstate[tq] == ST_N && normalLen[tq] > 0 ->
    out = normalQ[tq * QUEUE_MAX]
  :: else -> out = NONE
  fi
}

inline popFront(tq) {
  if
  :: (qstate[tq] == ST_RF || qstate[tq] == ST_FC) && catchupLen[tq] > 0 ->
    idx = 0;
    do
    :: idx + 1 < catchupLen[tq] ->
      catchupQ[tq * QUEUE_MAX + idx] = catchupQ[tq * QUEUE_MAX + idx + 1]; idx++
    :: else -> break
    od;
    catchupLen[tq]--;
    catchupQ[tq * QUEUE_MAX + catchupLen[tq]] = 0;
    if
    :: qstate[tq] == ST_FC && catchupLen[tq] == 0 -> qstate[tq] = ST_N
    :: else -> skip
    fi
  :: qstate[tq] == ST_N && normalLen[tq] > 0 ->
    idx = 0;
    do
    :: idx + 1 < normalLen[tq] ->
      normalQ[tq * QUEUE_MAX + idx] = normalQ[tq * QUEUE_MAX + idx + 1]; idx++
    :: else -> break
    od;
    normalLen[tq]--;
    normalQ[tq * QUEUE_MAX + normalLen[tq]] = 0
  :: else -> skip
  fi
}

inline clearQueues(tq) {
  idx = 0;
  do
  :: idx < QUEUE_MAX -> normalQ[tq * QUEUE_MAX + idx] = 0; catchupQ[tq * QUEUE_MAX + idx] = 0; idx++
  :: else -> break
  od;
  normalLen[tq] = 0; catchupLen[tq] = 0;
  windowLast[tq * WINDOW_MAX] = 0; windowLast[tq * WINDOW_MAX + 1] = 0; windowLen[tq] = 0;
  writeInFlight[tq] = 0
}

inline recoveryDone(rs) {
  recActive[rs] = 0; recTarget[rs] = 0; recPos[rs] = 0; recEnd[rs] = 0
}

/* suspend(): the stream to tq died (stream error / health checker). */
inline suspend(tq) {
  printf("MSC: player suspends target %d\n", tq);
  qstate[tq] = ST_S;
  lastAck[tq] = 0;  /* unused until the hello after reconnecting */
  clearQueues(tq);
#ifndef NO_TERM
  /* R3: the term goes up at the next hello and the queue is in S until
   * then, so every later event of this target's recovery stream would be
   * dropped (recoveryEntry / recoveryDone / recoveryFailed check term and
   * state; the adapter cancels the read): retire it now. */
  if
  :: recActive[tq] -> recoveryDone(tq)
  :: else -> skip
  fi
#endif
}

/* sendNext() + nextBatch(): one write in flight, window of WINDOW_MAX. */
inline sendNext(tq) {
  if
  :: !writeInFlight[tq] && windowLen[tq] < WINDOW_MAX && qstate[tq] != ST_S ->
    front(tq, item1);
    if
    :: item1 != NONE ->
      popFront(tq);
      front(tq, item2);
      if
      :: item2 != NONE -> popFront(tq)
      :: else -> skip
      fi;
      if
      :: STREAM_UP(tq) ->
        printf("MSC: player sends target %d batch [%d %d] (dummy bit 16, none 255)\n", tq, item1, item2);
        assert(nfull(toTarget[tq]));  /* batches in flight are bounded by the window */
        toTarget[tq]!(item2 == NONE -> 1 : 2), item1, (item2 == NONE -> 0 : item2)
      :: else -> skip  /* LATE_DETECTION: a write to a broken stream is lost */
      fi;
      writeInFlight[tq] = 1;
      windowLast[tq * WINDOW_MAX + windowLen[tq]] = ((item2 == NONE -> item1 : item2) & (DUMMY_BIT - 1));
      windowLen[tq]++
    :: else -> skip
    fi
  :: else -> skip
  fi
}

/* ---------------- Dispatcher (Algorithm 3) ---------------- */

inline dispatchTo(tq, e, isNormal) {
  if
  :: ROUTED(e, tq) && lastAck[tq] < e ->
    push(tq, e, isNormal);
    sendNext(tq)
  :: else -> skip
  fi
}

/* A dummy round. The paper's rule (lastAck more than DUMMY_LAG behind, and
 * not a target that just got the real entry at currentIndex) says which
 * targets may get a dummy; the code's rule (TargetQueue.maybePushDummy:
 * nothing queued or acked in the last dummyEveryEntries entries) picks a
 * subset of them, so a round gives a dummy to the targets in `mask` only,
 * and the Player tries every mask. */
inline dummyRound(mask) {
  tgt2 = 0;
  do
  :: tgt2 < NT ->
    if
    :: lastAck[tgt2] + DUMMY_LAG < currentIndex && !ROUTED(currentIndex, tgt2) && ((mask >> tgt2) & 1) ->
      push(tgt2, currentIndex | DUMMY_BIT, 1);
      sendNext(tgt2)
    :: else -> skip
    fi;
    tgt2++
  :: else -> break
  od
}

/* A progress dummy (ours: Dispatcher.dispatchEntries at the log's tail, or
 * progressTick once progressIntervalMs has passed): an empty part at
 * currentIndex for a connected target behind it that the entry at
 * currentIndex did not touch. The Player may take this step at any time, or
 * never (the code sends it at a time the model does not track); none while
 * a part at currentIndex is queued or unacked, as the code's needsProgress says. */
#define PROGRESS_OK(tq) (qstate[tq] != ST_S && mainNext > 1 && lastAck[tq] < currentIndex && !ROUTED(currentIndex, tq) \
  && !(normalLen[tq] > 0 && (normalQ[tq * QUEUE_MAX + normalLen[tq] - 1] & (DUMMY_BIT - 1)) >= currentIndex) \
  && !(windowLen[tq] > 0 && windowLast[tq * WINDOW_MAX + windowLen[tq] - 1] >= currentIndex))

inline progressDummy(tq) {
  printf("MSC: player queues progress dummy %d for target %d\n", currentIndex, tq);
  push(tq, currentIndex | DUMMY_BIT, 1);
  sendNext(tq)
}

inline mainFetchStep(mask) {
  dispatchTo(0, mainNext, 1);
  dispatchTo(1, mainNext, 1);
  mainNext++;   /* now currentIndex is the entry just dispatched */
  entriesSinceDummy++;
  if
  :: entriesSinceDummy == DUMMY_EVERY -> entriesSinceDummy = 0; dummyRound(mask)
  :: else -> skip
  fi
}

/* fetchingCompleted(term) */
inline fetchingCompleted(tq) {
  if
  :: qstate[tq] == ST_RF ->
    if
    :: catchupLen[tq] == 0 -> qstate[tq] = ST_N; sendNext(tq)
    :: else -> qstate[tq] = ST_FC
    fi
  :: else -> skip  /* NO_TERM only: an old stream ends after a newer one */
  fi
}

/* One step of recovery stream rs: fetch the next entry, or finish. */
inline recoveryStep(rs) {
  tgt = recTarget[rs];
#ifdef NO_TERM
  if
  :: qstate[tgt] == ST_S -> recoveryDone(rs)
  :: else ->
#else
  /* R3: a live stream is the current one, and its target is recovering */
  assert(qstate[tgt] == ST_RF);
#endif
    if
    :: recPos[rs] <= recEnd[rs] ->
      printf("MSC: recovery stream %d (target %d) reads %d\n", rs, tgt, recPos[rs]);
      dispatchTo(tgt, recPos[rs], 0);
      recPos[rs]++
    :: else ->
      printf("MSC: recovery stream %d (target %d) completes\n", rs, tgt);
      fetchingCompleted(tgt);
      recoveryDone(rs)
    fi
#ifdef NO_TERM
  fi
#endif
}

/* HelloReply on a new stream to tq: term + 1, lastAck = the target's index;
 * the recovery range is fixed in this same step. */
inline reconnect(tq) {
#ifdef LATE_DETECTION
  connUp[tq] = 1;
#endif
  lastAck[tq] = consumed[tq];
  printf("MSC: target %d reconnects: lastAck %d, currentIndex %d\n", tq, lastAck[tq], currentIndex);
  if
  :: lastAck[tq] < currentIndex ->
    qstate[tq] = ST_RF;
#ifdef NO_TERM
    slot = 0;
    do
    :: slot < RECOVERY_MAX && recActive[slot] -> slot++
    :: else -> break
    od;
    assert(slot < RECOVERY_MAX);
#else
    slot = tq;
    assert(!recActive[slot]);
#endif
    recActive[slot] = 1; recTarget[slot] = tq;
    recPos[slot] = lastAck[tq] + 1; recEnd[slot] = currentIndex;
    printf("MSC: recovery stream %d for target %d reads [%d, %d]\n", slot, tq, recPos[slot], recEnd[slot])
  :: else -> qstate[tq] = ST_N
  fi;
  sendNext(tq)  /* the queues are empty after suspend: sends nothing */
}

inline onAck(tq, ack) {
  lastAck[tq] = ack;
  /* The DeliveryWindow frees every batch whose last LSN is acked. */
  do
  :: windowLen[tq] > 0 && windowLast[tq * WINDOW_MAX] <= ack ->
    windowLast[tq * WINDOW_MAX] = windowLast[tq * WINDOW_MAX + 1];
    windowLast[tq * WINDOW_MAX + 1] = 0;
    windowLen[tq]--
  :: else -> break
  od;
  sendNext(tq)
}

/* The LogPlayer crashes: its streams are gone and its memory is lost (R1:
 * reset to one canonical value, no stream to any target). */
inline playerCrash() {
  printf("MSC: player crashes\n");
  playerCrashes++; playerUp = 0;
  tgt = 0;
  do
  :: tgt < NT ->
    clearStream(tgt);
#ifdef LATE_DETECTION
    connUp[tgt] = 0;
#endif
    qstate[tgt] = ST_S; lastAck[tgt] = 0; clearQueues(tgt);
    tgt++
  :: else -> break
  od;
  slot = 0;
  do
  :: slot < RECOVERY_MAX -> recoveryDone(slot); slot++
  :: else -> break
  od;
  mainNext = 1; entriesSinceDummy = 0
}

/* LogPlayer restart (Algorithm 5): nothing survives from before the crash;
 * learn every target's last index, start the main stream at min + 1. */
inline playerRestart() {
  printf("MSC: player restarts\n");
  tgt = 0;
  do
  :: tgt < NT ->
#ifdef LATE_DETECTION
    connUp[tgt] = 1;
#endif
    qstate[tgt] = ST_N; lastAck[tgt] = consumed[tgt]; tgt++
  :: else -> break
  od;
  mainNext = (lastAck[0] < lastAck[1] -> lastAck[0] : lastAck[1]) + 1;
  entriesSinceDummy = 0;
  playerUp = 1
}

proctype Player() {
end_player:
  do
  :: d_step { playerUp && mainNext <= NE -> mainFetchStep(3) }
  /* the same entry when it ends a dummy round: dummies for fewer targets */
  :: d_step { playerUp && mainNext <= NE && entriesSinceDummy == DUMMY_EVERY - 1 -> mainFetchStep(0) }
  :: d_step { playerUp && mainNext <= NE && entriesSinceDummy == DUMMY_EVERY - 1 -> mainFetchStep(1) }
  :: d_step { playerUp && mainNext <= NE && entriesSinceDummy == DUMMY_EVERY - 1 -> mainFetchStep(2) }
  :: d_step { playerUp && PROGRESS_OK(0) -> progressDummy(0) }
  :: d_step { playerUp && PROGRESS_OK(1) -> progressDummy(1) }
  :: d_step { playerUp && recActive[0] -> recoveryStep(0) }
  :: d_step { playerUp && recActive[1] -> recoveryStep(1) }
#ifdef NO_TERM
  :: d_step { playerUp && recActive[2] -> recoveryStep(2) }
  :: d_step { playerUp && recActive[3] -> recoveryStep(3) }
#endif
  /* write completion (the paper's completion-queue write tag) */
  :: d_step { playerUp && writeInFlight[0] -> writeInFlight[0] = 0; sendNext(0) }
  :: d_step { playerUp && writeInFlight[1] -> writeInFlight[1] = 0; sendNext(1) }
  :: d_step { playerUp && nempty(toPlayer[0]) -> toPlayer[0]?ackLsn; onAck(0, ackLsn) }
  :: d_step { playerUp && nempty(toPlayer[1]) -> toPlayer[1]?ackLsn; onAck(1, ackLsn) }
#ifdef LATE_DETECTION
  /* health checker / stream error, some time after the stream died */
  :: d_step { playerUp && !connUp[0] && qstate[0] != ST_S -> suspend(0) }
  :: d_step { playerUp && !connUp[1] && qstate[1] != ST_S -> suspend(1) }
#endif
  /* HelloReply on a new stream to a suspended target that is up */
  :: d_step { playerUp && qstate[0] == ST_S && targetUp[0] -> reconnect(0) }
  :: d_step { playerUp && qstate[1] == ST_S && targetUp[1] -> reconnect(1) }
  /* restart after a crash: every target answers its hello */
  :: d_step { !playerUp && targetUp[0] && targetUp[1] -> playerRestart() }
  od
}

/* Consume one item and persist the index with the data. */
inline consume(tq, item) {
  lsn = item & (DUMMY_BIT - 1);
  nextReal(tq, consumed[tq], expected);
  if
  :: item & DUMMY_BIT ->
    printf("MSC: target %d consumes dummy %d (index was %d)\n", tq, lsn, consumed[tq]);
    /* a dummy moves the index forward past nothing real */
    assert(lsn >= consumed[tq] && expected > lsn)
  :: else ->
    printf("MSC: target %d consumes %d (index was %d, expected %d)\n", tq, lsn, consumed[tq], expected);
    /* exactly once, in order */
    assert(lsn == expected)
  fi;
  consumed[tq] = lsn
}

/* A target receives a batch, applies it in one transaction (index with the
 * data) and acks its last index: one step. */
proctype Target(byte me) {
end_target:
  do
  :: d_step { nempty(toTarget[me]) ->
      toTarget[me]?batchLen, item1, item2;
      consume(me, item1);
      if
      :: batchLen == 2 -> consume(me, item2)
      :: else -> skip
      fi;
      assert(nfull(toPlayer[me]));  /* acks are bounded by the window */
      toPlayer[me]!consumed[me] }
  od
}

/* The target crashes: it is down (its durable index survives) and its
 * stream is lost; R2: the LogPlayer suspends its queue in the same step. */
inline targetCrash(tq) {
  printf("MSC: target %d crashes\n", tq);
  targetCrashes++; targetUp[tq] = 0;
  clearStream(tq);
#ifdef LATE_DETECTION
  connUp[tq] = 0
#else
  if
  :: qstate[tq] != ST_S -> suspend(tq)
  :: else -> skip  /* no stream (already suspended, or the LogPlayer is down) */
  fi
#endif
}

/* The stream to tq breaks; the target stays up. R2: suspended at once. */
inline connBreak(tq) {
  printf("MSC: stream to target %d breaks\n", tq);
  connBreaks++;
  clearStream(tq);
#ifdef LATE_DETECTION
  connUp[tq] = 0
#else
  suspend(tq)
#endif
}

proctype Failures() {
end_failures:
  do
  :: d_step { targetUp[0] && targetCrashes < TARGET_FAILS -> targetCrash(0) }
  :: d_step { targetUp[1] && targetCrashes < TARGET_FAILS -> targetCrash(1) }
  :: d_step { !targetUp[0] -> printf("MSC: target 0 restarts\n"); targetUp[0] = 1 }
  :: d_step { !targetUp[1] -> printf("MSC: target 1 restarts\n"); targetUp[1] = 1 }
  :: d_step { STREAM_UP(0) && connBreaks < CONN_FAILS -> connBreak(0) }
  :: d_step { STREAM_UP(1) && connBreaks < CONN_FAILS -> connBreak(1) }
  :: d_step { playerUp && playerCrashes < PLAYER_FAILS -> playerCrash() }
  /* Stuck with entries undelivered is a bug (no fairness needed for this). */
  :: timeout -> assert(allDone); break
  od
}

init {
  atomic {
    targetUp[0] = 1; targetUp[1] = 1;
#ifdef LATE_DETECTION
    connUp[0] = 1; connUp[1] = 1;
#endif
    run Player();
    run Target(0);
    run Target(1);
    run Failures()
  }
}

ltl eventuallyDone { <> allDone }

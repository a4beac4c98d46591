/*
 * Model A: the paper's LogPlayer (arXiv 1911.11286, sections 2-3) with
 * targets that trust it. One LogPlayer: main fetcher, bounded recovery
 * fetchers, dispatcher, one TargetQueue per target (states N/RF/FC/S, a term,
 * normal + catch-up queues), batching with one write in flight and a window
 * of sent-but-unacked batches, acks, a health checker, dummy entries.
 * Targets consume whatever arrives and persist "last consumed index"
 * atomically with the data; they check nothing.
 *
 * Atomicity: every LogPlayer action is one d_step. The TypeScript LogPlayer
 * is single-threaded (Node.js event loop), so each callback (a fetched entry,
 * a write completion, an ack, a health-check tick, a reconnect) runs to
 * completion without interleaving; the concurrency that remains is between
 * the LogPlayer, the targets, the network and the failures, which is what
 * the processes below interleave.
 *
 * Failures: a target crashes (down, connection lost) and restarts; a
 * connection breaks (in-flight batches and acks lost, target stays up); the
 * LogPlayer crashes (all its memory lost) and restarts.
 *
 * Safety: assertions in consume() (each real entry routed to a target is
 * consumed exactly once and in log order; a dummy never jumps over an
 * unconsumed real entry nor moves the index back), plus `timeout ->
 * assert(allDone)`: the system never gets stuck before delivering everything.
 * Liveness: ltl eventuallyDone, checked with `pan -a -f` (weak fairness).
 *
 * Variants (-D): NO_TERM drops the term per target (the paper's first draft).
 * Bounds (-D): FAILS (failures of each kind, default 1), see check.sh.
 */

#define NE 4            /* log entries, LSN 1..NE */
#define NT 2            /* targets (shards) */
#define BATCH_MAX 2     /* entries per batch */
#define WINDOW_MAX 2    /* sent-unacked batches per target */
#define QUEUE_MAX 6     /* normal/catch-up queue capacity (NE + dummies) */
#define RECOVERY_MAX 4  /* recovery streams alive at once (one per reconnect) */
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
#define REAL_COUNT_0 3  /* real entries routed to target 0: 1, 2, 4 */
#define REAL_COUNT_1 3  /* ... to target 1: 1, 3, 4 */

/* ---- LogPlayer memory (lost on a LogPlayer crash) ---- */
bit playerUp = 1;
byte currentIndex = 0;       /* last main-stream entry dispatched */
byte mainNext = 1;           /* next LSN the main fetcher reads */
byte mainCount = 0;          /* main-stream entries dispatched (dummy rounds) */
byte qstate[NT];
byte term[NT];
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
byte recTerm[RECOVERY_MAX];
byte recPos[RECOVERY_MAX];
byte recEnd[RECOVERY_MAX];

/* ---- network: one stream per target, FIFO, lost when it breaks ---- */
bit connUp[NT];
chan toTarget[NT] = [WINDOW_MAX] of { byte, byte, byte };  /* count, item1, item2 */
chan toPlayer[NT] = [WINDOW_MAX] of { byte };              /* ack: last consumed */

/* ---- targets: durable state survives crashes ---- */
bit targetUp[NT];
byte consumed[NT];           /* last consumed index, persisted with the data */
byte realConsumed[NT];       /* ghost: real entries consumed */

/* ---- failure budgets ---- */
byte targetCrashes = 0;
byte connBreaks = 0;
byte playerCrashes = 0;

#define allDone (realConsumed[0] == REAL_COUNT_0 && realConsumed[1] == REAL_COUNT_1)

/* First real entry for target t after LSN p (NE + 1 if none). */
inline nextReal(t, p, out) {
  out = p + 1;
  do
  :: out <= NE && !ROUTED(out, t) -> out++
  :: else -> break
  od
}

inline clearStream(t) {
  do
  :: nempty(toTarget[t]) -> toTarget[t]?_, _, _
  :: empty(toTarget[t]) -> break
  od;
  do
  :: nempty(toPlayer[t]) -> toPlayer[t]?_
  :: empty(toPlayer[t]) -> break
  od;
  skip  /* a d_step may not end in a loop's break */
}

/* ---------------- TargetQueue (Algorithm 1, 2) ---------------- */

inline push(t, item, isNormal, pushTerm) {
#ifdef NO_TERM
  if
  :: qstate[t] != ST_S ->
#else
  if
  :: qstate[t] != ST_S && (isNormal || term[t] == pushTerm) ->
#endif
    if
    :: isNormal ->
      assert(normalLen[t] < QUEUE_MAX);
      normalQ[t * QUEUE_MAX + normalLen[t]] = item; normalLen[t]++
    :: else ->
      assert(catchupLen[t] < QUEUE_MAX);
      catchupQ[t * QUEUE_MAX + catchupLen[t]] = item; catchupLen[t]++
    fi
  :: else -> skip   /* suspended, or a push for an expired term: dropped */
  fi
}

/* front(): the next item to send, or NONE; may move FC -> N. */
inline front(t, out) {
  if
  :: (qstate[t] == ST_RF || qstate[t] == ST_FC) && catchupLen[t] > 0 ->
    out = catchupQ[t * QUEUE_MAX]
  :: qstate[t] == ST_FC && catchupLen[t] == 0 ->
    qstate[t] = ST_N;
    out = (normalLen[t] > 0 -> normalQ[t * QUEUE_MAX] : NONE)
  :: qstate[t] == ST_N && normalLen[t] > 0 ->
    out = normalQ[t * QUEUE_MAX]
  :: else -> out = NONE
  fi
}

inline popFront(t) {
  if
  :: (qstate[t] == ST_RF || qstate[t] == ST_FC) && catchupLen[t] > 0 ->
    k = 0;
    do
    :: k + 1 < catchupLen[t] ->
      catchupQ[t * QUEUE_MAX + k] = catchupQ[t * QUEUE_MAX + k + 1]; k++
    :: else -> break
    od;
    catchupLen[t]--;
    catchupQ[t * QUEUE_MAX + catchupLen[t]] = 0;
    k = 0;
    if
    :: qstate[t] == ST_FC && catchupLen[t] == 0 -> qstate[t] = ST_N
    :: else -> skip
    fi
  :: qstate[t] == ST_N && normalLen[t] > 0 ->
    k = 0;
    do
    :: k + 1 < normalLen[t] ->
      normalQ[t * QUEUE_MAX + k] = normalQ[t * QUEUE_MAX + k + 1]; k++
    :: else -> break
    od;
    normalLen[t]--;
    normalQ[t * QUEUE_MAX + normalLen[t]] = 0;
    k = 0
  :: else -> skip
  fi
}

inline clearQueues(t) {
  k = 0;
  do
  :: k < QUEUE_MAX -> normalQ[t * QUEUE_MAX + k] = 0; catchupQ[t * QUEUE_MAX + k] = 0; k++
  :: else -> break
  od;
  k = 0;
  normalLen[t] = 0; catchupLen[t] = 0;
  windowLast[t * WINDOW_MAX] = 0; windowLast[t * WINDOW_MAX + 1] = 0; windowLen[t] = 0;
  writeInFlight[t] = 0
}

/* suspend(): the health checker saw the stream to t die. */
inline suspend(t) {
  printf("MSC: player suspends target %d\n", t);
  qstate[t] = ST_S;
  lastAck[t] = 0;  /* unused until the hello after reconnecting */
  clearQueues(t)
}

/* sendNext() + nextBatch(): one write in flight, window of WINDOW_MAX. */
inline sendNext(t) {
  if
  :: !writeInFlight[t] && windowLen[t] < WINDOW_MAX && qstate[t] != ST_S ->
    front(t, item1);
    if
    :: item1 != NONE ->
      popFront(t);
      front(t, item2);
      if
      :: item2 != NONE -> popFront(t)
      :: else -> skip
      fi;
      /* A write to a broken (not yet detected) stream is lost. */
      if
      :: connUp[t] ->
        printf("MSC: player sends target %d batch [%d %d] (dummy bit 16, none 255)\n", t, item1, item2);
        toTarget[t]!(item2 == NONE -> 1 : 2), item1, (item2 == NONE -> 0 : item2)
      :: else -> skip
      fi;
      writeInFlight[t] = 1;
      windowLast[t * WINDOW_MAX + windowLen[t]] = ((item2 == NONE -> item1 : item2) & (DUMMY_BIT - 1));
      windowLen[t]++
    :: else -> skip
    fi;
    item1 = NONE; item2 = NONE
  :: else -> skip
  fi
}

/* ---------------- Dispatcher (Algorithm 3) ---------------- */

inline dispatchTo(t, e, isNormal, pushTerm) {
  if
  :: ROUTED(e, t) && lastAck[t] < e ->
    push(t, e, isNormal, pushTerm);
    sendNext(t)
  :: else -> skip
  fi
}

inline dummyRound() {
  t2 = 0;
  do
  :: t2 < NT ->
    if
    /* not for a target that just got the real entry at currentIndex */
    :: lastAck[t2] + DUMMY_LAG < currentIndex && !ROUTED(currentIndex, t2) ->
      push(t2, currentIndex | DUMMY_BIT, 1, 0);
      sendNext(t2)
    :: else -> skip
    fi;
    t2++
  :: else -> break
  od
}

inline mainFetchStep() {
  dispatchTo(0, mainNext, 1, 0);
  dispatchTo(1, mainNext, 1, 0);
  currentIndex = mainNext;
  mainNext++;
  mainCount++;
  if
  :: mainCount % DUMMY_EVERY == 0 -> dummyRound()
  :: else -> skip
  fi
}

/* fetchingCompleted(term) */
inline fetchingCompleted(t, fcTerm) {
#ifdef NO_TERM
  if
  :: qstate[t] == ST_RF ->
#else
  if
  :: qstate[t] == ST_RF && term[t] == fcTerm ->
#endif
    if
    :: catchupLen[t] == 0 -> qstate[t] = ST_N; sendNext(t)
    :: else -> qstate[t] = ST_FC
    fi
  :: else -> skip
  fi
}

/* One step of recovery stream s: fetch the next entry, or finish. */
inline recoveryDone(s) {
  recActive[s] = 0; recTarget[s] = 0; recTerm[s] = 0; recPos[s] = 0; recEnd[s] = 0
}

inline recoveryStep(s) {
  t = recTarget[s];
#ifdef NO_TERM
  if
  :: qstate[t] == ST_S -> recoveryDone(s)
#else
  if
  :: qstate[t] == ST_S || term[t] != recTerm[s] -> recoveryDone(s)
#endif
  :: else ->
    if
    :: recPos[s] <= recEnd[s] ->
      dispatchTo(t, recPos[s], 0, recTerm[s]);
      recPos[s]++
    :: else ->
      printf("MSC: recovery stream %d (target %d, term %d) completes\n", s, t, recTerm[s]);
      fetchingCompleted(t, recTerm[s]);
      recoveryDone(s)
    fi
  fi
}

/* Target t is reachable again: term + 1, hello tells its last index. */
inline reconnect(t) {
  connUp[t] = 1;
  term[t]++;
  lastAck[t] = consumed[t];
  printf("MSC: target %d reconnects: term %d, lastAck %d, currentIndex %d\n", t, term[t], lastAck[t], currentIndex);
  writeInFlight[t] = 0;
  if
  :: lastAck[t] < currentIndex ->
    qstate[t] = ST_RF;
    s = 0;
    do
    :: s < RECOVERY_MAX && recActive[s] -> s++
    :: else -> break
    od;
    assert(s < RECOVERY_MAX);
    recActive[s] = 1; recTarget[s] = t; recTerm[s] = term[t];
    recPos[s] = lastAck[t] + 1; recEnd[s] = currentIndex;
    printf("MSC: recovery stream %d for target %d reads [%d, %d]\n", s, t, recPos[s], recEnd[s])
  :: else -> qstate[t] = ST_N
  fi;
  s = 0;
  sendNext(t)
}

inline onAck(t, a) {
  lastAck[t] = a;
  /* The DeliveryWindow frees every batch whose last LSN is acked. */
  do
  :: windowLen[t] > 0 && windowLast[t * WINDOW_MAX] <= a ->
    windowLast[t * WINDOW_MAX] = windowLast[t * WINDOW_MAX + 1];
    windowLast[t * WINDOW_MAX + 1] = 0;
    windowLen[t]--
  :: else -> break
  od;
  a = 0;
  sendNext(t)
}

/* LogPlayer restart (Algorithm 5): learn every target's last index, start
 * the main stream at min + 1. Nothing survives from before the crash. */
inline playerRestart() {
  printf("MSC: player restarts\n");
  t = 0;
  do
  :: t < NT ->
    qstate[t] = ST_N; term[t] = 1; clearQueues(t);
    connUp[t] = 1; lastAck[t] = consumed[t];
    t++
  :: else -> break
  od;
  t = 0;
  s = 0;
  do
  :: s < RECOVERY_MAX -> recoveryDone(s); s++
  :: else -> break
  od;
  s = 0;
  currentIndex = (lastAck[0] < lastAck[1] -> lastAck[0] : lastAck[1]);
  mainNext = currentIndex + 1;
  mainCount = 0;
  playerUp = 1
}

proctype Player() {
  byte t, t2, s, k, a, item1 = NONE, item2 = NONE;
end_player:
  do
  :: d_step { playerUp && mainNext <= NE -> mainFetchStep(); t2 = 0 }
  :: d_step { playerUp && recActive[0] -> recoveryStep(0); t = 0 }
  :: d_step { playerUp && recActive[1] -> recoveryStep(1); t = 0 }
  :: d_step { playerUp && recActive[2] -> recoveryStep(2); t = 0 }
  :: d_step { playerUp && recActive[3] -> recoveryStep(3); t = 0 }
  /* write completion (the paper's completion-queue write tag) */
  :: d_step { playerUp && writeInFlight[0] -> writeInFlight[0] = 0; sendNext(0) }
  :: d_step { playerUp && writeInFlight[1] -> writeInFlight[1] = 0; sendNext(1) }
  :: d_step { playerUp && nempty(toPlayer[0]) -> toPlayer[0]?a; onAck(0, a) }
  :: d_step { playerUp && nempty(toPlayer[1]) -> toPlayer[1]?a; onAck(1, a) }
  /* health checker */
  :: d_step { playerUp && !connUp[0] && qstate[0] != ST_S -> suspend(0) }
  :: d_step { playerUp && !connUp[1] && qstate[1] != ST_S -> suspend(1) }
  :: d_step { playerUp && qstate[0] == ST_S && !connUp[0] && targetUp[0] -> reconnect(0) }
  :: d_step { playerUp && qstate[1] == ST_S && !connUp[1] && targetUp[1] -> reconnect(1) }
  :: d_step { !playerUp && targetUp[0] && targetUp[1] -> playerRestart() }
  od
}

/* Consume a batch and persist the last index with the data (one step). */
inline consume(t, item) {
  lsn = item & (DUMMY_BIT - 1);
  nextReal(t, consumed[t], expected);
  if
  :: item & DUMMY_BIT ->
    printf("MSC: target %d consumes dummy %d (index was %d)\n", t, lsn, consumed[t]);
    /* a dummy moves the index forward past nothing real */
    assert(lsn >= consumed[t] && expected > lsn)
  :: else ->
    printf("MSC: target %d consumes %d (index was %d, expected %d)\n", t, lsn, consumed[t], expected);
    /* exactly once, in order */
    assert(lsn == expected);
    realConsumed[t]++
  fi;
  consumed[t] = lsn;
  lsn = 0; expected = 0
}

proctype Target(byte t) {
  byte n, item1, item2, lsn, expected;
end_target:
  do
  :: d_step { targetUp[t] && nempty(toTarget[t]) ->
      toTarget[t]?n, item1, item2;
      consume(t, item1);
      if
      :: n == 2 -> consume(t, item2)
      :: else -> skip
      fi;
      assert(nfull(toPlayer[t]));  /* acks are bounded by the window */
      toPlayer[t]!consumed[t];
      n = 0; item1 = 0; item2 = 0 }
  od
}

inline targetCrash(T) {
  printf("MSC: target %d crashes\n", T);
  targetCrashes++; targetUp[T] = 0; connUp[T] = 0; clearStream(T)
}

inline connBreak(T) {
  printf("MSC: stream to target %d breaks\n", T);
  connBreaks++; connUp[T] = 0; clearStream(T)
}

proctype Failures() {
  byte t;
end_failures:
  do
  :: d_step { targetUp[0] && targetCrashes < TARGET_FAILS -> targetCrash(0) }
  :: d_step { targetUp[1] && targetCrashes < TARGET_FAILS -> targetCrash(1) }
  :: d_step { !targetUp[0] -> targetUp[0] = 1 }
  :: d_step { !targetUp[1] -> targetUp[1] = 1 }
  :: d_step { connUp[0] && connBreaks < CONN_FAILS -> connBreak(0) }
  :: d_step { connUp[1] && connBreaks < CONN_FAILS -> connBreak(1) }
  :: d_step { playerUp && playerCrashes < PLAYER_FAILS ->
       printf("MSC: player crashes\n");
       playerCrashes++; playerUp = 0;
       t = 0;
       do
       :: t < NT -> connUp[t] = 0; clearStream(t); t++
       :: else -> break
       od;
       t = 0 }
  /* Stuck with entries undelivered is a bug (no fairness needed for this). */
  :: timeout -> assert(allDone); break
  od
}

init {
  atomic {
    byte i = 0;
    do
    :: i < NT -> qstate[i] = ST_N; term[i] = 1; targetUp[i] = 1; connUp[i] = 1; i++
    :: else -> break
    od;
    i = 0;
    run Player();
    run Target(0);
    run Target(1);
    run Failures()
  }
}

ltl eventuallyDone { <> allDone }

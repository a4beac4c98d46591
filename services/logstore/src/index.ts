// The LogStore as a library: for the cluster launcher, tests and (later) Raft.
export { startLogStore, WAL_DIRECTORY } from "./start-logstore";
export type { LogStoreOptions, RunningLogStore } from "./start-logstore";
export { LogStoreNode } from "./server";
export { DEFAULT_READ_LIMITS } from "./read-session";
export type { ReadLimits } from "./read-session";
export { CLUSTER_META_FILE } from "./cluster-meta";
export { diskFullRefusal } from "./disk-full";
// The Raft driver and its ports: the simulator (packages/sim) runs this driver over simulated ports.
export { RaftDriver } from "./replication/raft-driver";
export type {
  Completion,
  HardStateWriter,
  RaftApplication,
  RaftClock,
  RaftDriverOptions,
  RaftDriverPorts,
  RaftDriverTestOnlyFaults,
  RaftLogWriter,
  RaftProposer,
  RaftRandom,
  RaftTransport,
} from "./replication/raft-driver";
// The driver's production log and hard-state ports and the Storage port over the WAL: the simulator runs them
// over simulated segment files and a simulated raft-state.json.
export { RaftStateFileWriter, WalLogWriter } from "./replication/node-ports";
export type { RaftStateWrite } from "./replication/node-ports";
export type { RaftIdentity, RaftStateRecord } from "./replication/raft-state-file";
export { WalStorage } from "./replication/wal-storage";
// The Replication service's wire mapping: the simulator sends forged messages through it.
export { messageFromWire, messageToWire } from "./replication/wire";
export { decideBlankStart } from "./replication/blank-start";
export type { BlankStartDecision, ProbeAnswer } from "./replication/blank-start";

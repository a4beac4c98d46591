export { startLogPlayer } from "./start-logplayer";
export type { LogPlayerOptions, RunningLogPlayer } from "./start-logplayer";
export { PlayerDriver } from "./player-driver";
export type { PlayerDriverConfig, PlayerPorts } from "./player-driver";
export { LogStorePool, MainStream, RecoveryReads } from "./fetcher";
export type { MainStreamEvents, RecoveryEvents } from "./fetcher";
export { TargetStream } from "./target-stream";
export type { TargetStreamConfig, TargetStreamEvents } from "./target-stream";
export type { CommitLsnSource, DeliverCall, LogReader, PlayerClock, ReadCall, ShardConnector, TimerHandle } from "./ports";

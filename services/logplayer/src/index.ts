export { startLogPlayer } from "./start-logplayer";
export type { LogPlayerOptions, RunningLogPlayer } from "./start-logplayer";

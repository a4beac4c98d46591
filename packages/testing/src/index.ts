export { waitFor, type WaitForOptions } from "./wait-for";
export { mountTmpfs, unmount, fillUntilFree } from "./small-disk";

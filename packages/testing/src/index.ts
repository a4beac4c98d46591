export { waitFor, type WaitForOptions } from "./wait-for";
export { createTestTls, TEST_IDENTITIES, type TestTls } from "./test-tls";
export { mountTmpfs, unmount, fillUntilFree } from "./small-disk";

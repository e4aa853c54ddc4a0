// Tests that need a program from the system run when it is installed and otherwise skip with the
// reason printed; under GATEHOUSE_TEST_REQUIRE_ALL=1 (CI) a missing program fails the test instead.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Returns false (after skipping `t` with the reason) when `cmd` is missing and that is allowed. */
export function needCommand(t: TestContext, cmd: string, why: string): boolean {
  if (hasCommand(cmd)) return true;
  const reason = `${cmd} is not installed (${why})`;
  if (process.env.GATEHOUSE_TEST_REQUIRE_ALL === '1')
    throw new Error(`${reason}; GATEHOUSE_TEST_REQUIRE_ALL=1 requires it`);
  t.diagnostic(`skipped: ${reason}`);
  t.skip(reason);
  return false;
}

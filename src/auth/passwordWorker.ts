// The password thread's entry (started by auth/passwords.ts): checks one password per message.
import { parentPort } from 'node:worker_threads';
import { checkPassword } from './passwordCheck.ts';

interface Job {
  id: number;
  password: string;
  hash: string;
}

parentPort?.on('message', (job: Job) => {
  let ok = false;
  try {
    ok = checkPassword(job.password, job.hash);
  } catch {
    ok = false;
  }
  parentPort?.postMessage({ id: job.id, ok });
});

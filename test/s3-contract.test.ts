// The storage contract against a real S3-compatible server (s3rver), with 5 MiB parts so
// the large round trip is a multipart upload of 10+ parts. s3rver cannot abort multipart
// uploads (405), so "no incomplete upload is left" is asserted with aws-sdk-client-mock
// in s3-location.test.ts; here "nothing left" means no object.

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeStorageContract } from './storage-contract.js';

let server: S3TestServer;
let client: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  client = await createS3Client(server.clientOptions);
});
afterAll(async () => {
  client?.destroy();
  await server?.dispose();
});

describeStorageContract('S3 (s3rver)', { largeBytes: 50 * 1024 * 1024 + 12345, atomicNoClobber: false }, () => ({
  location: (name) =>
    new S3Location({ client, bucket: server.bucket, key: `contract/${name}`, endpoint: server.endpoint, partSize: 5 * 1024 * 1024 }),
  leftovers: async () => [],
}));

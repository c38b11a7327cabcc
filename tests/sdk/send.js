// One customer backend using a Node SDK: identify a person, track their signup, flush, exit.
//
//     node tests/sdk/send.js segment|rudderstack HOST WRITE_KEY USER_ID EMAIL
//
// Run by tests/test_sdk_matrix.py with the SDKs pinned in tests/sdk/package.json. Each SDK keeps
// its defaults (gzip, retries, content type) except a short flush interval, so the test sees what a
// customer's backend sends. Exits 1 with the SDK's error if it could not upload.
'use strict';

const [sdk, host, writeKey, userId, email] = process.argv.slice(2);

async function segment() {
  const { Analytics } = require('@segment/analytics-node');
  const analytics = new Analytics({ writeKey, host, flushInterval: 100, maxRetries: 3 });
  const errors = [];
  analytics.on('error', (error) => errors.push(error));
  analytics.identify({ userId, traits: { email, first_name: 'Ann' } });
  analytics.track({ userId, event: 'user_signup', properties: { plan: 'free' } });
  await analytics.closeAndFlush({ timeout: 30000 });
  if (errors.length) throw new Error(`segment could not upload: ${errors.map(String).join('; ')}`);
}

async function rudderstack() {
  const Analytics = require('@rudderstack/rudder-sdk-node');
  const analytics = new Analytics(writeKey, { dataPlaneUrl: host, flushInterval: 100, retryCount: 3, logLevel: 'error' });
  analytics.identify({ userId, traits: { email, first_name: 'Ann' } });
  analytics.track({ userId, event: 'user_signup', properties: { plan: 'free' } });
  // flush() rejects when a batch could not be uploaded after the SDK's retries.
  await analytics.flush();
}

const senders = { segment, rudderstack };
if (!senders[sdk]) {
  console.error(`unknown SDK ${sdk}`);
  process.exit(2);
}
senders[sdk]().then(
  () => process.exit(0),
  (error) => {
    console.error(String(error && error.stack ? error.stack : error));
    process.exit(1);
  },
);

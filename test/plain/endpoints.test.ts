// The plain bundle's pass (issue 12): test/blackbox/endpoints.test.ts against `node dist/bin.js` without the startup
// snapshot. EK_TEST_BUILD is read when test/helpers/daemon.ts loads, hence the import after setting it.
process.env.EK_TEST_BUILD = 'plain';
await import('../blackbox/endpoints.test.ts');

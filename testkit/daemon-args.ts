// The flags every black-box run of the daemon shares, for the tests and the benchmarks alike.

/** Common flags: loopback ports chosen by the OS, the fake API, files in `dir`. */
export function baseArgs(options: { apiUrl: string; tokenFile: string; jwtFile: string; extra?: readonly string[] }): string[] {
  return [
    'run',
    '--api-url', options.apiUrl,
    '--token-file', options.tokenFile,
    '--jwt-file', options.jwtFile,
    '--listen', '127.0.0.1:0',
    '--metrics-listen', '127.0.0.1:0',
    ...(options.extra ?? []),
  ];
}

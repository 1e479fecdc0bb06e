// What the bare code of a failed connection means, for one who does not know getaddrinfo's
// codes: shared by every "cannot reach" message (S3, the gateway's AWS calls, the functions').

const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ENOTFOUND: 'the host name does not resolve: check its spelling, and DNS',
  EAI_AGAIN: 'the host name could not be resolved now: check DNS and the network',
  ECONNREFUSED: 'nothing accepts connections at that address and port',
};

/** What `code` (`ENOTFOUND`…) means, or undefined for a code that speaks for itself. */
export function networkReason(code: string | undefined): string | undefined {
  return code === undefined ? undefined : NETWORK_REASONS[code];
}

/**
 * Why a connection to `endpoint` was reset before any answer: a port that speaks TLS resets one
 * that sends plain HTTP, so an `http://` endpoint names its `https://` form.
 */
export function connectionResetReason(endpoint: string | undefined, attempts: number): string {
  const secure = endpoint?.startsWith('http://') === true ? `https://${endpoint.slice('http://'.length)}` : undefined;
  return `the connection was reset before any answer${attempts > 1 ? ` in each of ${attempts} attempts` : ''}${secure === undefined ? '' : `: a port that speaks TLS does that to plain HTTP: for a store with TLS give the endpoint as ${secure}`}`;
}

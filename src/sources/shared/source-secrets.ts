// Every secret a source's configuration holds, for the scrubber its client passes its errors through.
// The generic scrubber removes what is shaped like a credential (`Bearer …`, `ApiToken …`,
// `client_secret=…`); a value quoted bare (a proxy's error page, the runtime quoting a header value, a
// form body echoed back) only this list hides. The OAuth2 authenticator adds the tokens it obtains.
import type { SourceSettings } from '../../config/types.js';
import { SecretScrubber } from '../../observability/secret-scrubber.js';

export function sourceSecrets(settings: Pick<SourceSettings, 'auth' | 'subscription'>): SecretScrubber {
  const secrets = new SecretScrubber();
  const { auth, subscription } = settings;
  secrets.add(auth.token); // bearer, or a DHIS2 personal access token
  secrets.add(auth.password);
  // The Authorization header a basic password goes out in: the encoded pair hides the password too.
  if (auth.password !== undefined)
    secrets.add(Buffer.from(`${auth.username ?? ''}:${auth.password}`).toString('base64'));
  secrets.add(auth.clientSecret);
  // The receiver's: never sent by the client, except in the Subscriptions `subscriptions --apply` posts.
  secrets.add(subscription?.secret);
  secrets.add(subscription?.hmacSecret);
  return secrets;
}

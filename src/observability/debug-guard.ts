// Libraries write through the `debug` package, outside the logger and its redaction: fhir-kit-client
// its FHIR error bodies (an OperationOutcome can quote a patient) and full search URLs, Express 5's
// router, body-parser, finalhandler and send every request's URL with its query string (an admin search
// for `Patient/MRN-…`, a notification's record id). The bridge reads none of that output, so `DEBUG=*`,
// set to look into something else, turns none of it on. `debug` reads DEBUG once, when a copy of it is
// first loaded, so this module is the CLI's first import (ES modules run in import order), before
// anything loads express or fhir-kit-client.
delete process.env.DEBUG;

export {};

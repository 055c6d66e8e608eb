// fhir-kit-client writes FHIR error bodies (an OperationOutcome can quote a patient) and full search
// URLs through the `debug` package, outside the logger and its redaction: `DEBUG=*`, set to look into
// something else, must not turn that on. `debug` reads DEBUG once, when first loaded, so this module is
// the CLI's first import (ES modules run in import order), before anything loads fhir-kit-client.
if (process.env.DEBUG) process.env.DEBUG = `${process.env.DEBUG},-fhir-kit-client:*`;

export {};

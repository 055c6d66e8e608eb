// What an answer or an error may quote of the values the bridge sent (names from the declaration) or
// keeps secret, in the forms servers, proxies and the runtime write them: each form is taken out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CUT, Echoes } from '../../src/observability/echoes.js';
import { SecretScrubber } from '../../src/observability/secret-scrubber.js';
import { formCodes, sentEchoes, sentValues, withoutSentValues } from '../../src/opencrvs/scrub.js';

const DECLARATION = {
  'child.name': { firstname: 'Zoé', surname: "O'Brien" },
  'mother.name': { firstname: 'Ndé', surname: 'Smith & Sons' },
  'father.name': { firstname: 'Dušan' },
  'child.gender': 'female',
  'child.sex': 'M',
  'child.order': '1',
};
const sent = sentEchoes(sentValues(DECLARATION));
const hide = (text: string) => withoutSentValues(text, sent);

describe('values sent to OpenCRVS, quoted back in an answer', () => {
  const cases: Array<[string, string]> = [
    ['HTML, numeric entity', 'refused: O&#39;Brien'],
    ['HTML, hex entity', 'refused: O&#x27;Brien'],
    ['HTML, named entity for an accented letter', 'refused: Nd&eacute;'],
    ['HTML, named entity for a letter with a caron', 'refused: Du&scaron;an'],
    ['HTML, &amp;', 'refused: Smith &amp; Sons'],
    ['HTML, escaped twice', 'refused: O&amp;#39;Brien'],
    ['JSON, \\u escape of the letter', 'refused: Nd\\u00e9'],
    ['JSON, \\u escape, upper-case hex', 'refused: Nd\\u00E9'],
    ['JSON, \\u escape of the apostrophe', 'refused: O\\u0027Brien'],
    ['JSON, a typographic apostrophe written \\u2019', 'refused: O\\u2019Brien'],
    ['JSON, escaped twice', 'refused: Nd\\\\u00e9'],
    ['percent-encoded UTF-8', 'refused: Nd%C3%A9'],
    ['percent-encoded, lower-case hex', 'refused: Nd%c3%a9'],
    ['form-encoded, a space as +', 'refused: Smith+%26+Sons'],
    ['NFD where NFC was sent', 'refused: Nde\u0301'],
    ['upper-cased', 'REFUSED: NDÉ'],
    ['upper-cased and NFD', 'REFUSED: NDE\u0301'],
    ['upper-cased and HTML-escaped', 'REFUSED: O&#39;BRIEN'],
    ['title-cased', 'refused: Female'],
  ];
  for (const [form, text] of cases) {
    it(`takes out a name written ${form}`, () => {
      assert.equal(hide(text), text.startsWith('REFUSED') ? 'REFUSED: [redacted]' : 'refused: [redacted]');
    });
  }

  it('takes out a name written in NFC where NFD was sent', () => {
    const decomposed = sentEchoes(sentValues({ name: 'Nde\u0301' }));
    assert.equal(withoutSentValues('refused: Ndé', decomposed), 'refused: [redacted]');
  });

  it('takes out several names in one text, and a name inside a longer value once', () => {
    const text = 'Zo&#233; O&#39;Brien, mother Nd\\u00e9 (Smith &amp; Sons)';
    assert.equal(hide(text), '[redacted] [redacted], mother [redacted] ([redacted])');
  });

  it('keeps the text around a name as it was, escapes included', () => {
    assert.equal(hide('&lt;b&gt; Nd&eacute; &lt;/b&gt; 50%'), '&lt;b&gt; [redacted] &lt;/b&gt; 50%');
  });

  it('does not shred a message with short values, nor with a value inside another word in another case', () => {
    // 'M' and '1' are too short to be looked for; 'female' is, in its own case anywhere (as before) and in
    // another case only as a word of its own.
    const text = 'Must be 1 of MALE, FEMALE; valid ZOE, Ndebele, BAD_REQUEST';
    assert.equal(hide(text), 'Must be 1 of MALE, [redacted]; valid ZOE, Ndebele, BAD_REQUEST');
    const bad = sentEchoes(sentValues({ name: 'Bad' }));
    assert.equal(withoutSentValues('BAD_REQUEST', bad), 'BAD_REQUEST', 'an identifier is one word');
    const ali = sentEchoes(sentValues({ name: 'Ali' }));
    assert.equal(
      withoutSentValues('createdAtLocation must be a valid location id', ali),
      'createdAtLocation must be a valid location id',
    );
    assert.equal(withoutSentValues('ALI: unknown', ali), '[redacted]: unknown');
  });

  it('takes a short value or a number out where the answer quotes it as a JSON value, and only there', () => {
    const short = sentEchoes(sentValues({ 'child.name': { middlename: 'G', surname: 'Li' }, 'child.order': 2 }));
    const quoted = '{"child.name":{"middlename": "G","surname":"LI"},"child.order":2,"G":12,"list":["Li"]}';
    assert.equal(
      withoutSentValues(`could not process declaration ${quoted}`, short),
      'could not process declaration {"child.name":{"middlename": "[redacted]","surname":"[redacted]"},' +
        '"child.order":[redacted],"G":12,"list":["[redacted]"]}',
      'values, in any case, between JSON delimiters; a key and another number are kept',
    );
    assert.equal(withoutSentValues('G: Li sent 2 of 12', short), 'G: Li sent 2 of 12', 'free text is kept');
    assert.deepEqual(
      withoutSentValues(
        { message: 'Li', declaration: { middlename: 'g', order: 2, other: 12, surname: 'Lim' } },
        short,
      ),
      {
        message: '[redacted]',
        declaration: { middlename: '[redacted]', order: '[redacted]', other: 12, surname: 'Lim' },
      },
      "a parsed answer's string or number that is the value whole",
    );
  });

  it("leaves a server's own lower-case words and field ids alone when a name is the same word", () => {
    // A surname Child sent: OpenCRVS's "child.name" is a field id, not the name.
    const child = sentEchoes(sentValues({ surname: 'Child' }));
    const message = '[{"message":"Unexpected field","id":"child.favouriteColour"}] for CHILD';
    assert.equal(withoutSentValues(message, child), message.replace('CHILD', '[redacted]'));
  });

  it("leaves the form's option codes sent in their fields out of what is hidden, not the same text elsewhere", () => {
    const codes = formCodes('farajaland', '2.0');
    const values = sentValues(
      [
        {
          'child.gender': 'male',
          'child.birthType': 'SINGLE',
          'child.placeOfBirth': 'HEALTH_FACILITY',
          'informant.relation': 'GRANDMOTHER',
          'documents.proofOfMother': [{ path: 'a1.jpg', originalFilename: 'amani-nid.jpg', option: 'NATIONAL_ID' }],
          // An option of another field (child.attendantAtBirth), here a free text; a value no option spells.
          'mother.occupation': 'NURSE',
          'mother.maritalStatus': 'Single mother',
          'child.name': { firstname: 'Amani', surname: 'NONE' },
        },
        { 'review.comment': 'OTHER' },
      ],
      codes,
    );
    assert.deepEqual(
      values.sort(),
      ['NONE', 'NURSE', 'OTHER', 'Single mother', 'a1.jpg', 'Amani', 'amani-nid.jpg'].sort(),
    );
    const hidden = sentEchoes(values);
    assert.equal(
      withoutSentValues('expected male or female, got Amani', hidden),
      'expected male or female, got [redacted]',
    );
    assert.deepEqual(
      [codes.get('child.gender'), codes.get('informant.relation')?.has('SPOUSE')],
      [new Set(['male', 'female', 'unknown']), true],
      "every event type's form: the death form's relations too",
    );
    assert.equal(formCodes('nowhere', '2.0').size, 0, 'no profile: no codes, every value hidden');
  });

  it('takes names out of keys too', () => {
    assert.deepEqual(withoutSentValues({ 'O&#39;Brien': ['Nd%C3%A9'] }, sent), { '[redacted]': ['[redacted]'] });
  });

  it('finds a value that looks escaped, quoted as it is and escaped', () => {
    const literal = sentEchoes(sentValues({ code: 'AB%41&amp;' }));
    assert.equal(withoutSentValues('got AB%41&amp; and AB%2541&amp;amp;', literal), 'got [redacted] and [redacted]');
  });

  it('maps a name back to its place past letters that fold or decode to another length', () => {
    // Astral and decomposing letters, escapes of one to ten characters: each changes the length of a
    // folded or decoded text, and the name is replaced where it stands in the original.
    const text = '😀 Île &#x1F600; Nd&eacute; ß ✓ %C3%A9 O&amp;#39;BRIEN 😀 Zoe\u0301!';
    assert.equal(hide(text), '😀 Île &#x1F600; [redacted] ß ✓ %C3%A9 [redacted] 😀 [redacted]!');
  });

  it('does not prepare a value longer than the text it can be found in, and still finds one that fits', () => {
    const fits = `Zoé ${'x'.repeat(65_536 - 4)}`;
    const tooLong = `Ndé ${'y'.repeat(2 * 1_048_576)}`;
    const echoes = sentEchoes(sentValues({ a: fits, b: tooLong, c: 'Dušan' }));
    // As sent, and each with its spaces written '+': the 2 MB value is neither.
    assert.equal(echoes.size, 3);
    assert.deepEqual(withoutSentValues({ quoted: fits }, echoes), { quoted: '[redacted]' });
    assert.deepEqual(withoutSentValues({ quoted: 'Dušan' }, echoes), { quoted: '[redacted]' });
  });

  it('searches a long text for many values in bounded time', () => {
    const many = sentEchoes(Array.from({ length: 200 }, (_, i) => `Name${i}é`));
    const long = `${'x&amp;y\\u00e9 %C3%A9 Ñ '.repeat(3000)}Name199\\u00e9`;
    const started = performance.now();
    assert.match(many.hide(long), /\[redacted\]$/);
    assert.ok(performance.now() - started < 2000, 'bounded by the text and the number of values');
  });
});

describe('an answer too long to check in full', () => {
  const NAMES = /Zo|Brien|Nd|Du|Smith/;

  it('cuts what is past the budget of one answer, and no name survives', () => {
    // Far more strings than one answer is searched for: every one of them quotes the names.
    const answer = {
      message: 'refused: Zo&eacute; O&#39;Brien',
      echoes: Array.from({ length: 20_000 }, (_, i) => ({ [`Nd\\u00e9 ${i}`]: `Du&scaron;an O'Brien ${i}` })),
    };
    const out = JSON.stringify(withoutSentValues(answer, sent));
    assert.ok(out.includes(CUT), 'the rest is cut');
    assert.doesNotMatch(out, NAMES);
    assert.ok(out.includes('"message":"refused: [redacted] [redacted]"'), 'the top-level message is searched first');
  });

  it('cuts long strings past the budget, and a key too', () => {
    const long = `${'Smith &amp; Sons '.repeat(5_000)}`;
    const out = withoutSentValues({ a: long, b: long, c: long, [long]: 'x' }, sent) as Record<string, string>;
    assert.ok(Object.values(out).includes(CUT) && CUT in out, JSON.stringify(out).slice(-200));
    assert.doesNotMatch(JSON.stringify(out), NAMES);
  });

  it('cuts the secrets of an answer past the budget too, and none survives', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('Sécret-Välue-42');
    const answer = { error: 'invalid_client', list: Array(20_000).fill('S%C3%A9cret-V%C3%A4lue-42') };
    const out = JSON.stringify(scrubber.value(answer));
    assert.ok(out.includes(CUT), 'the rest is cut');
    assert.doesNotMatch(out, /cret|lue-42/);
    assert.ok(out.startsWith('{"error":"invalid_client","list":["[redacted]"'), out.slice(0, 80));
  });
});

describe('secrets quoted back', () => {
  const scrubber = new SecretScrubber();
  scrubber.add('Sécret-Välue-42');
  const forms: Array<[string, string]> = [
    ['HTML-escaped', 'S&eacute;cret-V&auml;lue-42'],
    ['HTML numeric entities', 'S&#233;cret-V&#xE4;lue-42'],
    ['JSON-escaped', 'S\\u00e9cret-V\\u00e4lue-42'],
    ['percent-encoded', 'S%C3%A9cret-V%C3%A4lue-42'],
    ['NFD', 'Se\u0301cret-Va\u0308lue-42'],
    ['upper-cased', 'SÉCRET-VÄLUE-42'],
    ['lower-cased', 'sécret-välue-42'],
  ];
  for (const [form, text] of forms) {
    it(`takes out a secret written ${form}`, () => {
      assert.equal(scrubber.text(`invalid client secret ${text}`), 'invalid client secret [redacted]');
    });
  }
});

describe('Echoes', () => {
  it('finds nothing when it has no values, and leaves every text alone', () => {
    const none = new Echoes([], { caselessMinLength: 3 });
    assert.equal(none.hide('O&#39;Brien'), 'O&#39;Brien');
  });
});

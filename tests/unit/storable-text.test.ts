import { describe, expect, it } from 'vitest';
import { removeUnstorable, StorableTextStream } from '../../src/services/text/storable-text.js';

const ESC = '\u001b';

describe('model text cleaning', () => {
  it('removes terminal escape sequences whole, not just their ESC byte', () => {
    expect(removeUnstorable(`Calm ${ESC}]0;pwned\u0007Title`)).toBe('Calm Title');
    expect(removeUnstorable(`A quiet ${ESC}[8mhidden${ESC}[0m tale.${ESC}[2J It ends.`)).toBe('A quiet hidden tale. It ends.');
    expect(removeUnstorable('nul\u0000 here')).toBe('nul here');
  });

  it('removes a sequence split across streamed chunks, holding back only its start', () => {
    const stream = new StorableTextStream();
    const pieces = ['A quiet ', `${ESC}`, '[8', 'mhidden', `${ESC}]0;`, 'pwned', '\u0007 tale.'].map((chunk) => stream.push(chunk));
    pieces.push(stream.end());
    expect(pieces.join('')).toBe('A quiet hidden tale.');
    // Nothing but the unfinished sequence was ever held back.
    expect(pieces[0]).toBe('A quiet ');
  });

  it('drops an unterminated string sequence at the end of the reply', () => {
    const stream = new StorableTextStream();
    expect(stream.push(`The end.${ESC}]0;never closed`) + stream.end()).toBe('The end.');
  });
});

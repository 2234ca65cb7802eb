/** Why the emoji packages cannot be read (a test's skip reason), or undefined when they are installed. */
import { EMOJI_STYLES, emojiPackageDir } from '../../src/data/emoji.js';

export const emojiMissing: string | undefined = ((): string | undefined => {
  try {
    for (const s of EMOJI_STYLES) emojiPackageDir(s);
    return undefined;
  } catch (e) {
    return `emoji packages not installed (${(e as Error).message})`;
  }
})();

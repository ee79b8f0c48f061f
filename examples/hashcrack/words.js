'use strict';
// The search space: every word of length 1..maxLength over an alphabet, shortest first, in a
// fixed order, so that a batch can be named by its number and regenerated anywhere.

// Yields arrays of at most `batchSize` words.
function* batches(alphabet, maxLength, batchSize) {
  let batch = [];
  for (let len = 1; len <= maxLength; len++) {
    const idx = new Array(len).fill(0);
    for (;;) {
      batch.push(idx.map((i) => alphabet[i]).join(''));
      if (batch.length === batchSize) {
        yield batch;
        batch = [];
      }
      // Odometer increment, last position fastest.
      let p = len - 1;
      while (p >= 0 && ++idx[p] === alphabet.length) idx[p--] = 0;
      if (p < 0) break;
    }
  }
  if (batch.length > 0) yield batch;
}

function countWords(alphabetSize, maxLength) {
  let total = 0;
  for (let len = 1; len <= maxLength; len++) total += alphabetSize ** len;
  return total;
}

module.exports = {batches, countWords};

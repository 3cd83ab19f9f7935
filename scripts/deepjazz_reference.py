"""The reference for rnnlab's `deepjazz` grammar mode: deepjazz's preprocessing and decoding
run with music21 5.1.0, the version the course ran, its output written as JSON test data.

Source: the steps follow deepjazz (https://github.com/jisungk/deepjazz, files preprocess.py,
grammar.py and qa.py, by Ji-Sung Kim and Evan Chow, Apache License 2.0) as the deeplearning.ai
course ran them on Python 3 (its `preprocess.py`, `grammar.py`, `qa.py` and the post-processing
of `generate_music`). This script is the reference, so it follows those steps faithfully,
rewritten here (Python 3, no plotting or training); it calls music21 the same way.

Run (outside the repo's runtime; Python is only for reference data). The committed output was
made with Python 3.11.7, music21 5.1.0 and numpy 2.4.6 (the JSON records Python's and
music21's versions); it is the same for any PYTHONHASHSEED:
    python3 -m venv /work/venv-m21
    /work/venv-m21/bin/pip install music21==5.1.0 numpy
    /work/venv-m21/bin/python scripts/deepjazz_reference.py fixtures/original_metheny.mid \
        > crates/core/tests/data/deepjazz_metheny.json

Where this differs from deepjazz (only in its random draws, which no run can reproduce anyway):
- deepjazz's decoding calls `random.choice`. Here every such call draws from mulberry32 (the
  generator of rnnlab's `seededRng`; measure k of the decoding test is seeded k) and takes
  `items[floor(u * len(items))]`, so the TypeScript decoder can make the same choices.
- A scale tone's name is drawn from the scale's pitches in `getPitches()` order, where deepjazz
  iterates a Python set whose order changes with the hash seed (same names, same odds).
- music21's WeightedHexatonicBlues is a random mixture of the minor pentatonic and the
  hexatonic blues scale, drawn with Python's `random` on every use; here its network always
  takes the hexatonic path (the blue note included), so its names are fixed.
The corpus (preprocessing) draws nothing at random and is deepjazz's exactly.
"""
import collections
import collections.abc

# music21 5.1.0 predates Python 3.10, which removed these aliases.
for _name in ('Sequence', 'Mapping', 'MutableMapping', 'Iterable', 'Callable', 'Hashable'):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import copy
import json
import sys
from collections import OrderedDict
from itertools import groupby, zip_longest

import music21
from music21 import chord, converter, instrument, interval, key, meter, note, scale, stream, tempo

assert music21.VERSION_STR == '5.1.0', music21.VERSION_STR


class Mulberry32:
    """rnnlab's seededRng (src/music/grammar.ts): uniform floats in [0, 1)."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self):
        self.s = (self.s + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.s
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    def choice(self, items):
        items = list(items)
        return items[int(self.next() * len(items))]


RNG = Mulberry32(0)

# The hexatonic path of WeightedHexatonicBlues on every use (see the header).
from music21 import common as _common  # noqa: E402
from music21.scale import intervalNetwork as _network  # noqa: E402

_weighted = _common.weightedSelection
_network.common.weightedSelection = lambda values, weights, randomGenerator=None: _weighted(
    values, weights, randomGenerator=lambda: 0.999
)
TONICS = ['C', 'C#', 'D-', 'D', 'D#', 'E-', 'E', 'F', 'F#', 'G', 'G#', 'A', 'B-', 'B', 'C-']

# ---------------------------------------------------------------- preprocess.py


def parse_midi(path):
    """deepjazz's __parse_midi: measures of melody and chords of the course's section."""
    midi_data = converter.parse(path)
    melody_stream = midi_data[5]  # the guitar (music21 part 5)
    melody1, melody2 = melody_stream.getElementsByClass(stream.Voice)
    for j in melody2:
        melody1.insert(j.offset, j)
    melody_voice = melody1
    for i in melody_voice:
        if i.quarterLength == 0.0:
            i.quarterLength = 0.25
    melody_voice.insert(0, instrument.ElectricGuitar())
    melody_voice.insert(0, key.KeySignature(sharps=1))

    part_indices = [0, 1, 6, 7]
    comp_stream = stream.Voice()
    comp_stream.append([j.flat for i, j in enumerate(midi_data) if i in part_indices])
    full_stream = stream.Voice()
    for i in range(len(comp_stream)):
        full_stream.append(comp_stream[i])
    full_stream.append(melody_voice)

    solo_stream = stream.Voice()
    for part in full_stream:
        curr_part = stream.Part()
        curr_part.append(part.getElementsByClass(instrument.Instrument))
        curr_part.append(part.getElementsByClass(tempo.MetronomeMark))
        curr_part.append(part.getElementsByClass(key.KeySignature))
        curr_part.append(part.getElementsByClass(meter.TimeSignature))
        curr_part.append(part.getElementsByOffset(476, 548, includeEndBoundary=True))
        solo_stream.insert(curr_part.flat)

    melody = solo_stream[-1]
    measures = OrderedDict()
    offset_tuples = [(int(n.offset / 4), n) for n in melody]
    number = 0
    for _, group in groupby(offset_tuples, lambda x: x[0]):
        measures[number] = [n[1] for n in group]
        number += 1

    chord_stream = solo_stream[0]
    chord_stream.removeByClass(note.Rest)
    chord_stream.removeByClass(note.Note)
    offset_tuples_chords = [(int(n.offset / 4), n) for n in chord_stream]
    chords = OrderedDict()
    number = 0
    for _, group in groupby(offset_tuples_chords, lambda x: x[0]):
        chords[number] = [n[1] for n in group]
        number += 1
    del chords[len(chords) - 1]
    assert len(chords) == len(measures)
    return measures, chords


def abstract_grammars_of(measures, chords):
    """deepjazz's __get_abstract_grammars: measure 0 is left out (as in deepjazz)."""
    grammars = []
    for ix in range(1, len(measures)):
        m = stream.Voice()
        for i in measures[ix]:
            m.insert(i.offset, i)
        c = stream.Voice()
        for j in chords[ix]:
            c.insert(j.offset, j)
        grammars.append(parse_melody(m, c))
    return grammars


# ---------------------------------------------------------------- grammar.py


def is_scale_tone(chord_, note_):
    scale_type = scale.DorianScale()
    if chord_.quality == 'major':
        scale_type = scale.MajorScale()
    scales = scale_type.derive(chord_)
    names = [p.name for p in set(scales.getPitches())]
    return note_.name in names


def is_approach_tone(chord_, note_):
    for chord_pitch in chord_.pitches:
        up = chord_pitch.transpose(1)
        down = chord_pitch.transpose(-1)
        if note_.name in (down.name, down.getEnharmonic().name, up.name, up.getEnharmonic().name):
            return True
    return False


def is_chord_tone(last_chord, note_):
    return note_.name in (p.name for p in last_chord.pitches)


def generate_chord_tone(last_chord):
    return note.Note(RNG.choice([p.nameWithOctave for p in last_chord.pitches]))


def generate_scale_tone(last_chord):
    scale_type = scale.WeightedHexatonicBlues()
    if last_chord.quality == 'major':
        scale_type = scale.MajorScale()
    scales = scale_type.derive(last_chord)
    # deepjazz draws from [p.name for p in list(set(scales.getPitches()))], whose order depends
    # on Python's string hash seed (not reproducible even in Python); the same names in
    # getPitches() order, each as likely as in deepjazz's list.
    pitches = scales.getPitches()
    names = [p.name for p in pitches]
    assert sorted(names) == sorted(p.name for p in set(pitches)), (names, scales)
    name = RNG.choice(names)
    octave = RNG.choice([p.octave for p in last_chord.sortAscending().pitches])
    return note.Note('%s%s' % (name, octave))


def generate_approach_tone(last_chord):
    return generate_scale_tone(last_chord).transpose(RNG.choice([1, -1]))


def parse_melody(full_measure_notes, full_measure_chords):
    """deepjazz's parse_melody: one measure of melody over its chords → a grammar string."""
    measure = copy.deepcopy(full_measure_notes)
    chords = copy.deepcopy(full_measure_chords)
    measure.removeByNotOfClass([note.Note, note.Rest])
    chords.removeByNotOfClass([chord.Chord])
    start = measure[0].offset - (measure[0].offset % 4)
    terms = []
    prev = None
    non_rests = 0
    for nr in measure:
        try:
            last_chord = [n for n in chords if n.offset <= nr.offset][-1]
        except IndexError:
            chords[0].offset = start
            last_chord = [n for n in chords if n.offset <= nr.offset][-1]
        if isinstance(nr, note.Rest):
            kind = 'R'
        elif nr.name in last_chord.pitchNames or isinstance(nr, chord.Chord):
            kind = 'C'
        elif is_scale_tone(last_chord, nr):
            kind = 'S'
        elif is_approach_tone(last_chord, nr):
            kind = 'A'
        else:
            kind = 'X'
        info = '%s,%.3f' % (kind, nr.quarterLength)
        if isinstance(nr, note.Note):
            non_rests += 1
            if non_rests == 1:
                prev = nr
            else:
                dist = interval.Interval(noteStart=prev, noteEnd=nr)
                upper = interval.add([dist, 'm3'])
                lower = interval.subtract([dist, 'm3'])
                info += ',<%s,%s>' % (upper.directedName, lower.directedName)
                prev = nr
        terms.append(info)
    return ' '.join(terms)


def unparse_grammar(m1_grammar, m1_chords):
    """deepjazz's unparse_grammar: a measure's grammar string over its chords → notes."""
    elements = stream.Voice()
    offset = 0.0
    prev = None
    for term in m1_grammar.split(' '):
        terms = term.split(',')
        offset += float(terms[1])  # (deepjazz adds the length before inserting)
        if terms[0] == 'R':
            elements.insert(offset, note.Rest(quarterLength=float(terms[1])))
            continue
        try:
            last_chord = [n for n in m1_chords if n.offset <= offset][-1]
        except IndexError:
            m1_chords[0].offset = 0.0
            last_chord = [n for n in m1_chords if n.offset <= offset][-1]
        if len(terms) == 2:
            if terms[0] == 'C':
                new = generate_chord_tone(last_chord)
            elif terms[0] == 'S':
                new = generate_scale_tone(last_chord)
            else:
                new = generate_approach_tone(last_chord)
            new.quarterLength = float(terms[1])
            if new.octave < 4:
                new.octave = 4
            elements.insert(offset, new)
            prev = new
        else:
            interval1 = interval.Interval(terms[2].replace('<', ''))
            interval2 = interval.Interval(terms[3].replace('>', ''))
            if interval1.cents > interval2.cents:
                upper, lower = interval1, interval2
            else:
                upper, lower = interval2, interval1
            low_pitch = interval.transposePitch(prev.pitch, lower)
            high_pitch = interval.transposePitch(prev.pitch, upper)
            count = int(high_pitch.ps - low_pitch.ps + 1)
            test = is_chord_tone if terms[0] == 'C' else is_scale_tone if terms[0] == 'S' else is_approach_tone
            candidates = []
            for i in range(0, count):
                curr = note.Note(low_pitch.transpose(i).simplifyEnharmonic())
                if test(last_chord, curr):
                    candidates.append(curr)
            if len(candidates) > 1:
                new = RNG.choice([i for i in candidates if i.nameWithOctave != prev.nameWithOctave])
            elif len(candidates) == 1:
                new = candidates[0]
            else:
                new = prev.transpose(RNG.choice([-2, 2]))
            if new.octave < 3:
                new.octave = 3
            new.quarterLength = float(terms[1])
            elements.insert(offset, new)
            prev = new
    return elements


# ---------------------------------------------------------------- qa.py


def round_down(num, mult):
    return float(num) - (float(num) % mult)


def round_up_down(num, mult, up_down):
    return round_down(num, mult) if up_down < 0 else round_down(num, mult) + mult


def grouper(iterable, n, fillvalue=None):
    args = [iter(iterable)] * n
    return zip_longest(*args, fillvalue=fillvalue)


def prune_grammar(curr_grammar):
    pruned = curr_grammar.split(' ')
    for ix, gram in enumerate(pruned):
        terms = gram.split(',')
        terms[1] = str(round_up_down(float(terms[1]), 0.250, RNG.choice([-1, 1])))
        pruned[ix] = ','.join(terms)
    return ' '.join(pruned)


def prune_notes(curr_notes):
    for n1, n2 in grouper(curr_notes, n=2):
        if n2 is None:
            continue
        if isinstance(n1, note.Note) and isinstance(n2, note.Note):
            if n1.nameWithOctave == n2.nameWithOctave:
                curr_notes.remove(n2)
    return curr_notes


def clean_up_notes(curr_notes):
    remove = []
    for ix, m in enumerate(curr_notes):
        if m.quarterLength == 0.0:
            m.quarterLength = 0.250
        if ix < (len(curr_notes) - 1):
            if m.offset == curr_notes[ix + 1].offset and isinstance(curr_notes[ix + 1], note.Note):
                remove.append(ix + 1)
    return [i for ix, i in enumerate(curr_notes) if ix not in remove]


def decode_measure(values, measure_chords):
    """The post-processing of the course's generate_music for one measure of predicted values."""
    curr_chords = stream.Voice()
    for j in measure_chords:
        curr_chords.insert((j.offset % 4), j)
    tones = 'C,0.25 ' + ' '.join(values)
    tones = tones.replace(' A', ' C').replace(' X', ' C')
    tones = prune_grammar(tones)
    sounds = unparse_grammar(tones, curr_chords)
    sounds = prune_notes(sounds)
    sounds = clean_up_notes(sounds)
    return tones, sounds


# ---------------------------------------------------------------- output


def pitch_json(p):
    return {'name': p.nameWithOctave, 'midi': p.midi}


def chord_json(c):
    return {
        'offset': float(c.offset),
        'quarterLength': float(c.quarterLength),
        'pitches': [pitch_json(p) for p in c.pitches],
        'root': c.root().name,
        'quality': c.quality,
        'scale': [p.name for p in (scale.MajorScale() if c.quality == 'major' else scale.DorianScale()).derive(c).getPitches()],
        'blues': [p.name for p in (scale.MajorScale() if c.quality == 'major' else scale.WeightedHexatonicBlues()).derive(c).getPitches()],
    }


def element_json(n):
    out = {'offset': float(n.offset), 'quarterLength': float(n.quarterLength), 'class': type(n).__name__}
    if isinstance(n, note.Note):
        out.update(pitch_json(n.pitch))
    elif isinstance(n, chord.Chord):
        out['pitches'] = [pitch_json(p) for p in n.pitches]
    return out


def main(path):
    measures, chords = parse_midi(path)
    grammars = abstract_grammars_of(measures, chords)
    corpus = [x for g in grammars for x in g.split(' ')]
    # The decoding test: each measure's own values decoded over its chords (measure ix with seed ix).
    decoded = []
    for ix in range(1, len(chords)):
        values = grammars[ix - 1].split(' ')
        RNG.s = ix  # each measure decoded with its own seed (seededRng(ix) in rnnlab)
        chords_copy = copy.deepcopy(chords[ix])
        tones, sounds = decode_measure(values, chords_copy)
        decoded.append({
            'values': values,
            'pruned': tones,
            'notes': [element_json(n) for n in sounds],
        })
    out = {
        'source': 'scripts/deepjazz_reference.py',
        'music21': music21.VERSION_STR,
        'python': sys.version.split()[0],
        'file': path,
        'corpusLength': len(corpus),
        'uniqueValues': len(set(corpus)),
        'corpus': corpus,
        'measures': [
            {
                'index': k,
                'melody': [element_json(n) for n in measures[k]],
                'chords': [chord_json(c) for c in chords[k] if isinstance(c, chord.Chord)],
                'grammar': grammars[k - 1] if k >= 1 else None,
            }
            for k in measures
        ],
        'bluesScales': {t: [p.name for p in scale.WeightedHexatonicBlues(t).getPitches()] for t in TONICS},
        'decoded': decoded,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main(sys.argv[1])

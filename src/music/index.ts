// The music pipeline of the jazz job: MIDI I/O, section and measures, the deepjazz grammar,
// and the piano roll.
export * from './midi'
export * from './theory'
export * from './section'
export * from './grammar'
export * from './pianoroll'
export * as deepjazz from './deepjazz'
export * as music21 from './music21'

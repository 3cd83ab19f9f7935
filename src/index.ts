// rnnlab: recurrent neural networks for Node on a Rust core.
export type { Tensor } from './tensor'
export { tensor, zeros, at } from './tensor'
export { native } from './native'
export { RandomState } from './random'
export type { RandomStateSnapshot } from './random'
export * from './stepByStep'
export { initializeParameters, clip, sample, optimize } from './dinosaurus'
export type { CharRnnParams, CharRnnGradients, CharToIx } from './dinosaurus'
export { AbortError, invalidArg } from './contract'
export type { Progress, CommonFitOptions, InvalidArgumentError, BeamResult, CommonBeamOptions } from './contract'
export { NameModel, NAME_MODEL_DEFAULTS, capitalise } from './nameModel'
export type {
  NameFitOptions,
  NameModelOptions,
  Arithmetic,
  NameReport,
  TrainProgress,
  TrainOptions,
  SampleOptions,
  NameBeamOptions,
  NameModelParameters,
} from './nameModel'
export { Vocabulary, readNames, normaliseNames, defaultDinosaurNames } from './corpus'
export { lineChartSvg } from './plot'
export type { Series, ChartOptions } from './plot'
export { JazzImproviser, JAZZ_DEFAULTS, JAZZ_GRAMMARS, DEFAULT_JAZZ_MIDI, soloToMidi } from './jazz'
export type {
  JazzOptions,
  JazzFitOptions,
  JazzProgress,
  JazzHistory,
  ImproviseOptions,
  Solo,
  JazzGrammar,
} from './jazz'
export * as music from './music'
export { CharLanguageModel, CHAR_LM_CELLS, CHAR_LM_COURSE_SETUP, CHAR_LM_DEFAULTS, vocabularyOf } from './lm'
export type {
  CharCell,
  CharModelOptions,
  FitOptions,
  FitProgress,
  FitHistory,
  GenerateOptions,
  LmBeamOptions,
  TextFile,
} from './lm'

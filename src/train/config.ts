import {z} from 'zod'

import {QUANT_TYPE_NAMES} from '../llama/quant-types.js'

/*
 * The training configuration: what `train.yaml` (or `.json`) may say, its defaults, and the checks
 * that span several fields. The validated, fully defaulted object is what the job bundle's
 * config.json carries to train.py, so both sides read one definition.
 */

/** The base model when none is given: small enough for one rented GPU, with a chat template llama.cpp knows. */
export const DEFAULT_BASE_MODEL = 'microsoft/Phi-3-mini-4k-instruct'

/** The local quantization when none is given. */
export const DEFAULT_QUANT = 'Q4_K_M'

const LoraConfig = z
  .object({
    /** Rank of the low-rank update. */
    r: z.number().int().min(1).max(1024).default(16),
    /** Scale of the update (alpha / r multiplies it). */
    alpha: z.number().positive().max(4096).default(32),
    dropout: z.number().min(0).lt(1).default(0.05),
    /** "all-linear" (every linear layer but the output head) or explicit module names. */
    targetModules: z.union([z.literal('all-linear'), z.array(z.string().min(1)).min(1)]).default('all-linear'),
  })
  .strict()

const TrainingConfig = z
  .object({
    epochs: z.number().positive().max(100).default(2),
    learningRate: z.number().positive().max(0.1).default(2e-4),
    /** Examples longer than this many tokens are dropped (and counted), never cut: a cut would lose the answer. */
    maxLength: z.number().int().min(64).max(131_072).default(2048),
    batchSize: z.number().int().min(1).max(512).default(4),
    gradientAccumulationSteps: z.number().int().min(1).max(1024).default(4),
    /** Share of the optimizer steps spent warming up; default 0.03 unless warmupSteps is given. */
    warmupRatio: z.number().min(0).lt(1).optional(),
    warmupSteps: z.number().int().min(0).optional(),
    lrScheduler: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    weightDecay: z.number().min(0).max(1).default(0),
    maxGradNorm: z.number().positive().default(1),
    /** Optimizer steps between loss lines. */
    loggingSteps: z.number().int().min(1).default(10),
    /** Optimizer steps between evaluations of the eval set (default: once per epoch); needs an eval dataset. */
    evalSteps: z.number().int().min(1).optional(),
    /** Optimizer steps between checkpoints that a restarted train stage resumes from. */
    saveSteps: z.number().int().min(1).default(100),
    gradientCheckpointing: z.boolean().default(true),
  })
  .strict()

const QuantizationConfig = z
  .object({
    /** Load the base model in 4 bits (QLoRA). When bitsandbytes cannot load, train.py says so and trains LoRA on the bf16 model. */
    load4bit: z.boolean().default(true),
    quantType: z.enum(['nf4', 'fp4']).optional(),
    doubleQuant: z.boolean().optional(),
    computeDtype: z.enum(['bfloat16', 'float16']).default('bfloat16'),
  })
  .strict()

const MergeConfig = z
  .object({
    /** The adapter is merged into the base model loaded at this precision, never into 4-bit weights. */
    dtype: z.enum(['bfloat16', 'float16']).default('bfloat16'),
  })
  .strict()

const ConvertConfig = z
  .object({
    /** The GGUF that comes back; quantization happens locally afterwards. */
    outType: z.enum(['f16', 'bf16', 'f32']).default('f16'),
  })
  .strict()

const ChatConfig = z
  .object({
    /** The assistant's end-of-turn token; by default the one the base model's chat template closes a turn with. */
    eotToken: z.string().min(1).optional(),
  })
  .strict()

const RuntimeConfig = z
  .object({
    /** Python on the training host (3.10 or later). */
    python: z.string().min(1).default('python3'),
    /**
     * Where the packages come from. `host` (default): `python`'s own, when they import and fit together
     * (versions recorded, differences from the pins warned about); what is missing is installed from the
     * carried wheels (`wheels`) into a venv that still sees the host's packages, never from the network.
     * `venv`: a fresh virtual environment with requirements.txt (from `wheels` when given, else from the
     * index, failing at once when it cannot be reached). `none`: `python`'s packages as they are.
     * `true` and `false` are the older spellings of `venv` and `none`.
     */
    install: z.union([z.enum(['host', 'venv', 'none']), z.boolean()]).default('host'),
    /** A local folder of .whl files carried in the bundle, for what the host lacks (installed with --no-index). */
    wheels: z.string().min(1).optional(),
    /** Preflight refuses a host without a GPU, or with less free GPU memory than this (GiB). */
    minFreeVramGiB: z.number().min(0).default(12),
    /** Preflight refuses a host with less free disk than this (GiB) where the job runs. */
    minFreeDiskGiB: z.number().min(0).default(30),
  })
  .strict()

export const TrainConfigSchema = z
  .object({
    /**
     * A folder on the training host holding a causal language model with its own chat template (config.json,
     * safetensors weights, tokenizer files), or a Hugging Face id already in the host's Hugging Face cache:
     * the job runs offline and never downloads.
     */
    baseModel: z.string().min(1).default(DEFAULT_BASE_MODEL),
    /** Let transformers run code shipped with the model (only for models that need it). */
    trustRemoteCode: z.boolean().default(false),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    lora: LoraConfig.prefault({}),
    training: TrainingConfig.prefault({}),
    quantization: QuantizationConfig.prefault({}),
    merge: MergeConfig.prefault({}),
    convert: ConvertConfig.prefault({}),
    chat: ChatConfig.prefault({}),
    runtime: RuntimeConfig.prefault({}),
    /** llama-quantize type applied locally to the fetched GGUF. */
    quant: z.enum(QUANT_TYPE_NAMES).default(DEFAULT_QUANT),
  })
  .strict()
  .superRefine((config, context) => {
    const issue = (path: PropertyKey[], message: string) => context.addIssue({code: 'custom', path, message})
    const {training, quantization, lora, merge, convert} = config
    if (training.warmupRatio !== undefined && training.warmupSteps !== undefined) {
      issue(['training', 'warmupSteps'], 'give either training.warmupSteps or training.warmupRatio, not both')
    }
    if (!quantization.load4bit) {
      if (quantization.quantType !== undefined)
        issue(
          ['quantization', 'quantType'],
          'quantType applies to 4-bit loading only: remove it or set quantization.load4bit: true',
        )
      if (quantization.doubleQuant !== undefined)
        issue(
          ['quantization', 'doubleQuant'],
          'doubleQuant applies to 4-bit loading only: remove it or set quantization.load4bit: true',
        )
    }
    if (Array.isArray(lora.targetModules) && lora.targetModules.includes('all-linear')) {
      issue(
        ['lora', 'targetModules'],
        '"all-linear" stands alone: use targetModules: all-linear, or list module names only',
      )
    }
    if (convert.outType === 'bf16' && merge.dtype !== 'bfloat16') {
      issue(
        ['convert', 'outType'],
        'a bf16 GGUF needs bfloat16 merged weights: set merge.dtype: bfloat16 or convert.outType: f16',
      )
    }
    if (training.saveSteps < training.loggingSteps) {
      issue(
        ['training', 'saveSteps'],
        `a checkpoint every ${training.saveSteps} steps but a loss line only every ${training.loggingSteps}: saveSteps must be at least loggingSteps`,
      )
    }
    if (config.quant === 'F32' && convert.outType !== 'f32') {
      issue(
        ['quant'],
        `F32 cannot be made from a ${convert.outType} GGUF without inventing precision: choose a smaller type or convert.outType: f32`,
      )
    }
  })
  .transform((config) => ({
    ...config,
    training: {
      ...config.training,
      warmupRatio: config.training.warmupSteps === undefined ? (config.training.warmupRatio ?? 0.03) : undefined,
    },
    runtime: {...config.runtime, install: installMode(config.runtime.install)},
    quantization: config.quantization.load4bit
      ? {
          ...config.quantization,
          quantType: config.quantization.quantType ?? 'nf4',
          doubleQuant: config.quantization.doubleQuant ?? true,
        }
      : config.quantization,
  }))

/** runtime.install with the older spellings read: true is venv, false is none. */
function installMode(install: boolean | 'host' | 'venv' | 'none'): 'host' | 'venv' | 'none' {
  if (install === true) return 'venv'
  if (install === false) return 'none'
  return install
}

/** What a config file may contain (every field optional). */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>
/** The validated configuration with every default applied. */
export type TrainConfig = z.output<typeof TrainConfigSchema>

/** The defaults alone. */
export function defaultTrainConfig(): TrainConfig {
  return TrainConfigSchema.parse({})
}

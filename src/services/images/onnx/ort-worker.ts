import { parentPort } from 'node:worker_threads';
import { env, InferenceSession } from 'onnxruntime-node';
import { DiffusionCancelled, DiffusionInputError, runDiffusion } from './diffusion.js';
import { parseProviderList } from './execution-providers.js';
import { ModelLayoutError } from './model-layout.js';
import { loadModel, type LoadedModel } from './model-loader.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

/**
 * The thread that owns the ONNX Runtime sessions. onnxruntime-node's
 * session.run() is a promise, but it calls the native run synchronously on the
 * thread that calls it (inside a setImmediate), which would freeze the server's
 * event loop for the whole UNet run; here it freezes only this thread.
 */
if (!parentPort) throw new Error('ort-worker must run as a worker thread');
const port = parentPort;

// ORT prints a red error line for every provider it cannot load; we report those ourselves, once.
env.logLevel = 'fatal';

let model: LoadedModel | null = null;

const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on('message', (message: ToWorker) => {
  void handle(message);
});

async function handle(message: ToWorker): Promise<void> {
  if (message.type === 'load') {
    const startedAt = performance.now();
    try {
      model = await loadModel(message.modelDir, {
        providers: parseProviderList(message.providers.join(',')),
        factory: { create: (file, options) => InferenceSession.create(file, options) },
        onFallback: ({ provider, reason }, next) =>
          post({
            type: 'log',
            level: 'warn',
            message: next
              ? `ONNX Runtime: execution provider ${provider} unavailable (${reason}); falling back to ${next}`
              : `ONNX Runtime: execution provider ${provider} unavailable (${reason})`,
          }),
        onNote: (text) => post({ type: 'log', level: 'warn', message: text }),
      });
      const { io } = model;
      post({
        type: 'loaded',
        info: {
          name: model.folder.name,
          dir: model.folder.dir,
          scheduler: String(model.folder.scheduler._class_name ?? 'unknown'),
          defaults: model.defaults,
          providers: model.providers,
          precision: io.unet.sample.type === 'float16' ? 'fp16' : 'fp32',
          timestepType: io.unet.timestep.type,
          loadMs: Math.round(performance.now() - startedAt),
        },
      });
    } catch (error) {
      post({ type: 'load-failed', message: (error as Error).message, layout: error instanceof ModelLayoutError });
    }
    return;
  }

  const { id } = message;
  if (!model) {
    post({ type: 'failed', id, message: 'the model is not loaded', userError: false });
    return;
  }
  const cancel = new Int32Array(message.cancel);
  try {
    const result = await runDiffusion(model, {
      requests: message.requests,
      steps: message.steps ?? model.defaults.steps,
      guidanceScale: message.guidanceScale ?? model.defaults.guidanceScale,
      isCancelled: () => Atomics.load(cancel, 0) === 1,
      onStep: (done, total, startedAt, endedAt) => post({ type: 'progress', id, done, total, startedAt, endedAt }),
      warn: (text, detail) => post({ type: 'log', level: 'warn', message: text, detail }),
    });
    post(
      { type: 'done', id, images: result.images, timings: result.timings, steps: result.steps, guidanceScale: result.guidanceScale },
      result.images.map((image) => image.rgb.buffer as ArrayBuffer),
    );
  } catch (error) {
    if (error instanceof DiffusionCancelled) post({ type: 'cancelled', id, stepsDone: error.stepsDone, stoppedAt: error.stoppedAt });
    else post({ type: 'failed', id, message: (error as Error).message, userError: error instanceof DiffusionInputError });
  }
}

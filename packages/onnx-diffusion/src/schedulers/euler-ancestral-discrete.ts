import type { LinearStep } from './scheduler.js';
import { EulerDiscreteScheduler } from './euler-discrete.js';

/**
 * diffusers' EulerAncestralDiscreteScheduler: the Euler step goes below the next
 * σ (to σ_down) and fresh noise of σ_up brings it back, so that
 * σ_down² + σ_up² = σᵢ₊₁² (k-diffusion's get_ancestral_step, η = 1).
 * Timesteps, σs and input scaling are Euler discrete's.
 */
export class EulerAncestralDiscreteScheduler extends EulerDiscreteScheduler {
  override readonly kind = 'euler-ancestral';

  override linear(index: number): LinearStep {
    const sigma = this.sigmas[index];
    const sigmaNext = this.sigmas[index + 1];
    const sigmaUp = Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
    return this.eulerStep(index, sigmaDown, sigmaUp);
  }
}

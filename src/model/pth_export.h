// A state dict as the .pth the official code loads (`torch.load(p)['model']`, main_finetune.py --finetune,
// detection/segmentation codebases built on MAE): {'model': OrderedDict(name -> tensor), 'epoch', 'args', 'config'}
// as util/misc.py save_model writes it, with
//   'epoch'   the last finished epoch of a training checkpoint (its run position), when known
//   'args'    the run's arguments (our checkpoints' "args" metadata) as a plain dict — the official one is an
//             argparse.Namespace, which torch.load(weights_only=True) refuses; floats, lists and objects as text
//   'config'  the official constructor's keyword arguments: MaskedAutoencoderViT(**config, norm_layer=...) for an
//             MAE or encoder, models_vit.VisionTransformer(**config, norm_layer=...) for a classifier (norm_layer
//             is not data: partial(nn.LayerNorm, eps=1e-6), as the official presets pass it)
#pragma once
#include "io/pth_writer.h"
#include "model/state_dict.h"

namespace mae {

// The document borrows the tensors of `sd`, which must outlive it.
io::PthDocument pth_document(const StateDict& sd);

}  // namespace mae

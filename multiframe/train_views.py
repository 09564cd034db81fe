"""
Train on several posed frames of a room: train.py's loop, with rooms in place of single images.

    python -m multiframe.train_views                # 3 frames of 64 px, 8 questions a room, 5000 steps
    python -m multiframe.train_views --no-camera-embed --out runs/views/nocam      # the camera-blind control
    torchrun --standalone --nproc_per_node=2 -m multiframe.train_views

Every train.py flag applies (the model, the recipe, DDP, --resume, --init-from); these add the
rooms: how many frames, how many objects, how many questions in one sequence, and whether the
choices' answers show their measurements first (views.with_reasons). The model is the chapters'
CameraAwareMLLM: each frame is encoded with its own K and camera-to-world pose, so the Plücker
moments o × d̂ of E_cam tell the frames where each camera stood.
"""
from dataclasses import dataclass

from multiframe.items import corpus, datasets, views_checks
from multiframe.views import TRAIN_TASKS
import train
from distill import MIN_OBJECT


@dataclass
class ViewsTrainConfig(train.TrainConfig):
    out: str = 'runs/views/default'
    image_size: int = 64
    patch_size: int = 8
    pixel_shuffle: int = 2           # 8×8 patches of a 64 px frame -> 16 LLM tokens a frame
    tasks: str = ','.join(TRAIN_TASKS)   # the questions asked ('depth': views.VIEW_TASKS, for older runs)
    max_steps: int = 5000
    eval_every: int = 500
    val_samples: int = 32
    frames: int = 3                  # posed frames per room, 1..16
    object_channels: bool = True     # the teacher's object channels on every frame (no: surface depth only)
    room_objects: str = '1,3'        # objects per room, 'lo,hi' (a room that shows fewer than 2 is redrawn)
    questions: int = 8               # up to this many questions per room in one sequence (multi-turn)
    min_pixels: float = 6.0          # an object is seen in a frame from this many pixels of a 64² frame
    reasons: bool = False            # the choices' answers show their measurements first (views.with_reasons)
    # the recipe these rooms were trained with (docs/multiframe.md): frames warped, objects taught from a
    # quarter of a token, no extra object-depth term
    render_augment: bool = False
    object_min: float = MIN_OBJECT
    object_weight: float = 0.0


def main(argv=None):
    cfg = train.parse_args(argv, ViewsTrainConfig, __doc__)
    if bad := views_checks(cfg):
        raise ValueError('invalid settings: ' + '; '.join(bad))
    train.main(cfg, datasets, corpus(cfg))


if __name__ == '__main__':
    main()

"""Neural-network modules with PyTorch's names, parameter names, weight layouts and
initialisations, one family a file: module.py (the base class), init.py (initial values,
manual_seed), linear.py, conv.py (Conv2d, ConvTranspose2d, pools), norm.py, batchnorm.py,
container.py, dropout.py, upsample.py, attention.py, recurrent.py (RNN, LSTM, GRU).

    class MLP(lp.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = lp.nn.Linear(784, 256)
            self.fc2 = lp.nn.Linear(256, 10)
        def __call__(self, x):                 # or `def forward(self, x)`, as in PyTorch
            return self.fc2(lp.relu(self.fc1(x)))

    model = MLP()
    model.parameters()           # {"fc1.weight": f32 (256, 784), "fc1.bias": (256,), ...}
    model.load_parameters({k: v.numpy() for k, v in torch_model.state_dict().items()})
    y = lp.compile(model)(x)     # reads the model's current parameters at every call
"""
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import GELU, Flatten, ReLU, Sequential, Sigmoid, Tanh
from .attention import MultiheadAttention
from .conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d
from .dropout import Dropout
from .init import manual_seed
from .linear import Embedding, Linear
from .module import Module
from .norm import LayerNorm
from .recurrent import GRU, LSTM, RNN
from .upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Module", "Linear", "Conv2d", "ConvTranspose2d", "LayerNorm", "BatchNorm1d",
           "BatchNorm2d", "Dropout", "Embedding", "Sequential", "ReLU", "GELU", "Tanh", "Sigmoid",
           "Flatten", "MaxPool2d", "AvgPool2d", "Upsample", "UpsamplingNearest2d",
           "UpsamplingBilinear2d", "MultiheadAttention", "RNN", "LSTM", "GRU", "manual_seed"]

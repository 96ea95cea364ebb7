global using Xunit;
global using TorchSharp;
global using static TorchSharp.torch;

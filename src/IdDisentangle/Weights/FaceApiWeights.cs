using IdDisentangle.Models.FaceApi;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>Loading face-api.js's TensorFlow.js weights (names and layouts of its manifests) into the face-api
/// nets.</summary>
internal static class FaceApiWeights
{
    public static void LoadTfjs(this FaceLandmark68Net net, IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        var sd = new Dictionary<string, Tensor>();
        var src = new TensorSource(tf, file);
        Tensor Take(string key) => src.Take(key);
        for (int b = 0; b < 4; b++)
        {
            for (int c = 0; c < 4; c++)
            {
                string tfp = $"dense{b}/conv{c}",
                    p = $"dense.{b}.conv{c}";
                if (b == 0 && c == 0)
                    sd[$"{p}.weight"] = TfjsWeights.ConvFilter(Take($"{tfp}/filters"));
                else
                {
                    sd[$"{p}.depthwise"] = TfjsWeights.DepthwiseFilter(Take($"{tfp}/depthwise_filter"));
                    sd[$"{p}.pointwise"] = TfjsWeights.ConvFilter(Take($"{tfp}/pointwise_filter"));
                }
                sd[$"{p}.bias"] = Take($"{tfp}/bias");
            }
        }
        sd["fc_weight"] = Take("fc/weights");
        sd["fc_bias"] = Take("fc/bias");
        src.RequireAllUsed();
        StateDicts.Assign(net, sd, file);
    }

    /// <summary>Copies face-api.js weights (TensorFlow names and layouts) into the network.</summary>
    public static void LoadTfjs(this FaceRecognitionNet net, IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        var sd = new Dictionary<string, Tensor>();
        var src = new TensorSource(tf, file);
        void Conv(string prefix, string tfPrefix)
        {
            sd[$"{prefix}.weight"] = TfjsWeights.ConvFilter(src.Take($"{tfPrefix}/conv/filters"));
            sd[$"{prefix}.bias"] = src.Take($"{tfPrefix}/conv/bias");
            sd[$"{prefix}.scale"] = src.Take($"{tfPrefix}/scale/weights");
            sd[$"{prefix}.shift"] = src.Take($"{tfPrefix}/scale/biases");
        }
        Conv("conv32_down", "conv32_down");
        foreach (var (name, _, _, _) in FaceRecognitionNet.Blocks)
        {
            Conv($"blocks.{name}.conv1", $"{name}/conv1");
            Conv($"blocks.{name}.conv2", $"{name}/conv2");
        }
        sd["fc"] = src.Take("fc");
        src.RequireAllUsed();
        StateDicts.Assign(net, sd, file);
    }

    public static void LoadTfjs(this SsdMobilenetV1 net, IReadOnlyDictionary<string, Tensor> tf, string file)
    {
        const double Epsilon = 0.0010000000474974513; // the exported graph's batch-norm epsilon
        var src = new TensorSource(tf, file);
        var sd = new Dictionary<string, Tensor>();
        sd["conv0.weight"] = TfjsWeights.ConvFilter(src.Take("MobilenetV1/Conv2d_0_pointwise/weights"));
        sd["conv0.bias"] = src.Take("MobilenetV1/Conv2d_0_pointwise/convolution_bn_offset");
        for (int i = 1; i <= 13; i++)
        {
            string d = $"MobilenetV1/Conv2d_{i}_depthwise",
                p = $"pairs.{i - 1}";
            // Inference batch norm folded into the depthwise filter: one multiply-add less per pixel, same function.
            var scale =
                src.Take($"{d}/BatchNorm/gamma").to_type(ScalarType.Float64)
                / torch.sqrt(src.Take($"{d}/BatchNorm/moving_variance").to_type(ScalarType.Float64).Plus(Epsilon));
            var filter = TfjsWeights.DepthwiseFilter(src.Take($"{d}/depthwise_weights")).to_type(ScalarType.Float64);
            sd[$"{p}.depthwise.weight"] = (filter * scale.view(-1, 1, 1, 1)).to_type(ScalarType.Float32);
            sd[$"{p}.depthwise.bias"] = (
                src.Take($"{d}/BatchNorm/beta").to_type(ScalarType.Float64)
                - src.Take($"{d}/BatchNorm/moving_mean").to_type(ScalarType.Float64) * scale
            ).to_type(ScalarType.Float32);
            sd[$"{p}.pointwise.weight"] = TfjsWeights.ConvFilter(src.Take($"MobilenetV1/Conv2d_{i}_pointwise/weights"));
            sd[$"{p}.pointwise.bias"] = src.Take($"MobilenetV1/Conv2d_{i}_pointwise/convolution_bn_offset");
        }
        for (int i = 0; i < SsdMobilenetV1.ExtraLayers.Length; i++)
        {
            sd[$"extra.{i}.weight"] = TfjsWeights.ConvFilter(src.Take($"Prediction/Conv2d_{i}_pointwise/weights"));
            sd[$"extra.{i}.bias"] = src.Take($"Prediction/Conv2d_{i}_pointwise/convolution_bn_offset");
        }
        for (int i = 0; i < SsdMobilenetV1.Predictors.Length; i++)
        {
            string b = $"Prediction/BoxPredictor_{i}";
            sd[$"predictors.{i}.box.weight"] = TfjsWeights.ConvFilter(src.Take($"{b}/BoxEncodingPredictor/weights"));
            sd[$"predictors.{i}.box.bias"] = src.Take($"{b}/BoxEncodingPredictor/biases");
            sd[$"predictors.{i}.cls.weight"] = TfjsWeights.ConvFilter(src.Take($"{b}/ClassPredictor/weights"));
            sd[$"predictors.{i}.cls.bias"] = src.Take($"{b}/ClassPredictor/biases");
        }
        var extraDim = src.Take("Output/extra_dim");
        if (!extraDim.shape.SequenceEqual(new long[] { 1, SsdMobilenetV1.Anchors, 4 }))
            throw new WeightMismatchException(
                $"{file}: Output/extra_dim has shape [{string.Join(",", extraDim.shape)}], expected [1,{SsdMobilenetV1.Anchors},4]"
            );
        sd["anchors"] = extraDim.view(SsdMobilenetV1.Anchors, 4);
        // The export also carries the graph's constants (resize size, reshape and slice bounds, concat axes,
        // preprocessing scalars), all with at most 4 elements; the structure above already encodes them.
        foreach (var (name, t) in tf)
            if (
                !sd.ContainsKey(name)
                && t.numel() <= 4
                && !name.EndsWith("/weights", StringComparison.Ordinal)
                && !name.EndsWith("/biases", StringComparison.Ordinal)
            )
                src.Take(name);
        src.RequireAllUsed();
        StateDicts.Assign(net, sd, file);
    }
}

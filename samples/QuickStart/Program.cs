using IdDisentangle;

// QuickStart GENERATOR OUT_DIR [RUN]: two random faces; with a trained run, the first with the second's attributes.
using var generator = FaceGenerator.Load(args[0]);
var faces = generator.Sample(2, seed: 1, truncation: 0.7);
Directory.CreateDirectory(args[1]);
foreach (var face in faces)
    face.Save(Path.Combine(args[1], face.Name + ".png"));
if (args.Length > 2)
{
    using var swapper = FaceSwapper.Load(args[2], new FaceSwapperOptions { Inputs = FaceInputMode.AsIs });
    swapper.Swap(faces[0], faces[1]).Save(Path.Combine(args[1], "swap.png"));
}
Console.WriteLine($"{generator.Description}: wrote {faces.Count} faces to {args[1]}");

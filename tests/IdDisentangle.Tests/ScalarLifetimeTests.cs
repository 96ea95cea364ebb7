using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using IdDisentangle.Runtime;

namespace IdDisentangle.Tests;

/// <summary>
/// TorchSharp 0.107 hands each number to libtorch in a Scalar that only its finalizer frees, and reads the native
/// handle before the call: once the call has begun nothing keeps the Scalar alive, so a collection another thread
/// triggers lets the finalizer free it while libtorch has yet to read it (a crash in c10::Scalar::toFloat, or a wrong
/// number). The library hands libtorch only Scalars it keeps (<see cref="KeptScalars"/>, or a local it disposes after
/// the call); this reads the library's IL, and the IL of the TorchSharp methods it calls, for any other.
/// </summary>
public class ScalarLifetimeTests
{
    /// <summary>The library, and the CLI on top of it.</summary>
    public static TheoryData<string> Assemblies =>
        [typeof(KeptScalars).Assembly.Location, typeof(IdDisentangle.Cli.CliApp).Assembly.Location];

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void TheLibraryHandsLibtorchNoTemporaryScalar(string assembly)
    {
        using var ours = new IlAssembly(assembly);
        using var torchSharp = new IlAssembly(typeof(Scalar).Assembly.Location);
        var creators = new TemporaryScalarCreators(torchSharp);
        var found = new List<string>();
        foreach (var (method, body) in ours.MethodBodies())
        {
            // KeptScalars hands its Scalars to a lambda and disposes them after the call.
            bool keeps = ours.DeclaringTypeName(method)
                .StartsWith(typeof(KeptScalars).FullName!, StringComparison.Ordinal);
            foreach (var call in ours.Calls(body))
            {
                string callee = ours.Describe(call.Token);
                string? why =
                    !keeps && ours.IsTemporaryScalar(call) ? "a Scalar made for the call"
                    : IlAssembly.MakesScalar(callee) || Unavoidable.Contains(callee) ? null
                    : ours.TargetAssembly(call.Token) == "TorchSharp" ? creators.Why(callee)
                    : null;
                if (why is not null)
                    found.Add($"{ours.Describe(method)} at IL_{call.Offset:x4}: {callee} ({why})");
            }
        }
        Assert.True(
            found.Count == 0,
            $"{found.Count} calls hand libtorch a Scalar nothing keeps:\n" + string.Join("\n", found.Distinct().Order())
        );
    }

    /// <summary>
    /// TorchSharp methods with a temporary Scalar inside and no overload that takes one: PReLU's constructor (its
    /// initial slope, replaced by the loaded weights), softplus (beta and threshold; the adversarial losses, on
    /// logits of a few numbers) and SummaryWriter.add_img (x 255, once per validation).
    /// </summary>
    static readonly HashSet<string> Unavoidable =
    [
        "TorchSharp.torch/nn::PReLU(Int64,Double,TorchSharp.torch/Device,"
            + "System.Nullable`1<TorchSharp.torch/ScalarType>)",
        "TorchSharp.torch/nn/functional::softplus(TorchSharp.torch/Tensor,Double,Double)",
        "TorchSharp.Modules.SummaryWriter::add_img(String,TorchSharp.torch/Tensor,Int32,"
            + "System.Nullable`1<Int64>,String)",
    ];

    /// <summary>The scan finds what it is meant to: a temporary Scalar here, and one inside TorchSharp.</summary>
    [Fact]
    public void TheScanFindsTemporaryScalars()
    {
        using var tests = new IlAssembly(typeof(ScalarLifetimeTests).Assembly.Location);
        using var torchSharp = new IlAssembly(typeof(Scalar).Assembly.Location);
        var creators = new TemporaryScalarCreators(torchSharp);
        var (method, body) = tests.MethodBodies().Single(m => tests.Describe(m.Method).Contains("::Unkept("));
        var calls = tests.Calls(body).ToList();
        Assert.Contains(calls, c => tests.IsTemporaryScalar(c));
        Assert.Contains(calls, c => creators.Why(tests.Describe(c.Token)) is not null);
        var (_, keptBody) = tests.MethodBodies().Single(m => tests.Describe(m.Method).Contains("::Kept("));
        Assert.DoesNotContain(tests.Calls(keptBody), c => tests.IsTemporaryScalar(c));
    }

    static Tensor Unkept(Tensor x, Tensor y) => (x + y).mul(0.5);

    static Tensor Kept(Tensor x, Tensor y)
    {
        using var half = 0.5.ToScalar();
        return x.add(y, KeptScalars.One).mul(half);
    }

    /// <summary>The TorchSharp methods that make a Scalar they do not keep, directly or through other TorchSharp
    /// methods (three calls deep).</summary>
    sealed class TemporaryScalarCreators(IlAssembly torchSharp)
    {
        readonly Dictionary<string, MethodDefinitionHandle> byName = torchSharp
            .MethodBodies()
            .Select(m => (m.Method, Name: torchSharp.Describe(m.Method)))
            .GroupBy(m => m.Name)
            .ToDictionary(g => g.Key, g => g.First().Method);
        readonly Dictionary<string, string?> known = [];

        public string? Why(string method, int depth = 0)
        {
            if (known.TryGetValue(method, out var why))
                return why;
            known[method] = null; // recursion guard
            if (depth > 3 || !byName.TryGetValue(method, out var handle))
                return null;
            var body = torchSharp.Body(handle);
            if (body is null)
                return null;
            foreach (var call in torchSharp.Calls(body))
            {
                if (torchSharp.IsTemporaryScalar(call))
                {
                    why = $"TorchSharp's {method} makes a Scalar for {torchSharp.Describe(call.Token)}";
                    break;
                }
                string callee = torchSharp.Describe(call.Token);
                if (callee.StartsWith("TorchSharp.", StringComparison.Ordinal) && Why(callee, depth + 1) is { } inner)
                {
                    why = inner;
                    break;
                }
            }
            return known[method] = why;
        }
    }

    readonly record struct Call(int Offset, EntityHandle Token, ILOpCode Next);

    /// <summary>An assembly's metadata and method bodies, read without loading it.</summary>
    sealed class IlAssembly : IDisposable
    {
        static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!)
            .ToDictionary(o => o.Value);

        readonly PEReader pe;
        readonly MetadataReader md;

        public IlAssembly(string path)
        {
            pe = new PEReader(File.OpenRead(path));
            md = pe.GetMetadataReader();
        }

        public void Dispose() => pe.Dispose();

        public IEnumerable<(MethodDefinitionHandle Method, MethodBodyBlock Body)> MethodBodies()
        {
            foreach (var h in md.MethodDefinitions)
                if (Body(h) is { } body)
                    yield return (h, body);
        }

        public MethodBodyBlock? Body(MethodDefinitionHandle h)
        {
            int rva = md.GetMethodDefinition(h).RelativeVirtualAddress;
            return rva == 0 ? null : pe.GetMethodBody(rva);
        }

        /// <summary>Every call in a body, with the opcode that follows it.</summary>
        public IEnumerable<Call> Calls(MethodBodyBlock body)
        {
            var il = body.GetILReader();
            Call? pending = null;
            while (il.RemainingBytes > 0)
            {
                int offset = il.Offset;
                short value = il.ReadByte();
                if (value == 0xFE)
                    value = (short)(0xFE00 | il.ReadByte());
                var op = OpCodesByValue[value];
                if (pending is { } p)
                {
                    yield return p with
                    {
                        Next = (ILOpCode)(ushort)op.Value,
                    };
                    pending = null;
                }
                switch (op.OperandType)
                {
                    case OperandType.InlineNone:
                        break;
                    case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                        il.ReadByte();
                        break;
                    case OperandType.InlineVar:
                        il.ReadInt16();
                        break;
                    case OperandType.InlineI8 or OperandType.InlineR:
                        il.ReadInt64();
                        break;
                    case OperandType.InlineSwitch:
                        int n = il.ReadInt32();
                        for (int i = 0; i < n; i++)
                            il.ReadInt32();
                        break;
                    case OperandType.InlineMethod:
                        int token = il.ReadInt32();
                        if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj)
                            pending = new Call(offset, MetadataTokens.EntityHandle(token), ILOpCode.Nop);
                        break;
                    default:
                        il.ReadInt32();
                        break;
                }
            }
            if (pending is { } last)
                yield return last;
        }

        /// <summary>
        /// A call that makes a Scalar and hands it straight on (to an argument or an expression) rather than storing
        /// it in a local, which a <c>using</c> would dispose after the call.
        /// </summary>
        public bool IsTemporaryScalar(Call call) =>
            MakesScalar(Describe(call.Token))
            && call.Next
                is not (
                    ILOpCode.Stloc
                    or ILOpCode.Stloc_s
                    or ILOpCode.Stloc_0
                    or ILOpCode.Stloc_1
                    or ILOpCode.Stloc_2
                    or ILOpCode.Stloc_3
                    or ILOpCode.Stsfld
                    or ILOpCode.Stfld
                );

        public static bool MakesScalar(string method) =>
            method.StartsWith("TorchSharp.Scalar::op_Implicit(", StringComparison.Ordinal)
            || method.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar(", StringComparison.Ordinal);

        public string? TargetAssembly(EntityHandle token)
        {
            EntityHandle parent = token.Kind switch
            {
                HandleKind.MemberReference => md.GetMemberReference((MemberReferenceHandle)token).Parent,
                HandleKind.MethodSpecification => md.GetMethodSpecification((MethodSpecificationHandle)token).Method,
                _ => default,
            };
            if (parent.Kind == HandleKind.MemberReference)
                return TargetAssembly(parent);
            if (parent.Kind == HandleKind.TypeSpecification)
                parent = GenericTypeOf((TypeSpecificationHandle)parent);
            while (parent.Kind == HandleKind.TypeReference)
            {
                var scope = md.GetTypeReference((TypeReferenceHandle)parent).ResolutionScope;
                if (scope.Kind == HandleKind.AssemblyReference)
                    return md.GetString(md.GetAssemblyReference((AssemblyReferenceHandle)scope).Name);
                parent = scope;
            }
            return null;
        }

        EntityHandle GenericTypeOf(TypeSpecificationHandle spec)
        {
            var blob = md.GetBlobReader(md.GetTypeSpecification(spec).Signature);
            var code = blob.ReadSignatureTypeCode();
            if (code == SignatureTypeCode.GenericTypeInstance)
            {
                blob.ReadSignatureTypeCode();
                return blob.ReadTypeHandle();
            }
            return default;
        }

        public string DeclaringTypeName(MethodDefinitionHandle h) =>
            TypeName(md.GetMethodDefinition(h).GetDeclaringType());

        /// <summary>"Namespace.Type::name(parameter types)", the same for a definition and a reference to it.</summary>
        public string Describe(EntityHandle h)
        {
            var names = new TypeNames(this);
            switch (h.Kind)
            {
                case HandleKind.MethodDefinition:
                    var def = md.GetMethodDefinition((MethodDefinitionHandle)h);
                    var sig = def.DecodeSignature(names, null);
                    return $"{TypeName(def.GetDeclaringType())}::{md.GetString(def.Name)}({Join(sig.ParameterTypes)})";
                case HandleKind.MemberReference:
                    var r = md.GetMemberReference((MemberReferenceHandle)h);
                    string parent = r.Parent.Kind switch
                    {
                        HandleKind.TypeReference or HandleKind.TypeDefinition or HandleKind.TypeSpecification =>
                            names.Of(r.Parent),
                        _ => "?",
                    };
                    if (r.GetKind() != MemberReferenceKind.Method)
                        return $"{parent}::{md.GetString(r.Name)}";
                    var rs = r.DecodeMethodSignature(names, null);
                    return $"{parent}::{md.GetString(r.Name)}({Join(rs.ParameterTypes)})";
                case HandleKind.MethodSpecification:
                    return Describe(md.GetMethodSpecification((MethodSpecificationHandle)h).Method);
                default:
                    return h.Kind.ToString();
            }
        }

        static string Join(ImmutableArray<string> types) => string.Join(",", types);

        string TypeName(TypeDefinitionHandle h)
        {
            var t = md.GetTypeDefinition(h);
            string name = md.GetString(t.Name);
            var outer = t.GetDeclaringType();
            return outer.IsNil ? Qualified(md.GetString(t.Namespace), name) : $"{TypeName(outer)}/{name}";
        }

        string TypeName(TypeReferenceHandle h)
        {
            var t = md.GetTypeReference(h);
            string name = md.GetString(t.Name);
            return t.ResolutionScope.Kind == HandleKind.TypeReference
                ? $"{TypeName((TypeReferenceHandle)t.ResolutionScope)}/{name}"
                : Qualified(md.GetString(t.Namespace), name);
        }

        static string Qualified(string ns, string name) => ns.Length == 0 ? name : $"{ns}.{name}";

        /// <summary>Type names without generic arguments' identities (enough to tell TorchSharp's overloads
        /// apart).</summary>
        sealed class TypeNames(IlAssembly a) : ISignatureTypeProvider<string, object?>
        {
            public string Of(EntityHandle h) =>
                h.Kind switch
                {
                    HandleKind.TypeDefinition => a.TypeName((TypeDefinitionHandle)h),
                    HandleKind.TypeReference => a.TypeName((TypeReferenceHandle)h),
                    HandleKind.TypeSpecification => a
                        .md.GetTypeSpecification((TypeSpecificationHandle)h)
                        .DecodeSignature(this, null),
                    _ => "?",
                };

            public string GetArrayType(string e, ArrayShape s) => e + "[" + new string(',', s.Rank - 1) + "]";

            public string GetByReferenceType(string e) => e + "&";

            public string GetFunctionPointerType(MethodSignature<string> s) => "fnptr";

            public string GetGenericInstantiation(string g, ImmutableArray<string> args) => $"{g}<{Join(args)}>";

            public string GetGenericMethodParameter(object? c, int i) => "!!" + i;

            public string GetGenericTypeParameter(object? c, int i) => "!" + i;

            public string GetModifiedType(string m, string u, bool r) => u;

            public string GetPinnedType(string e) => e;

            public string GetPointerType(string e) => e + "*";

            public string GetPrimitiveType(PrimitiveTypeCode c) => c.ToString();

            public string GetSZArrayType(string e) => e + "[]";

            public string GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle h, byte k) => a.TypeName(h);

            public string GetTypeFromReference(MetadataReader r, TypeReferenceHandle h, byte k) => a.TypeName(h);

            public string GetTypeFromSpecification(MetadataReader r, object? c, TypeSpecificationHandle h, byte k) =>
                Of(h);
        }
    }
}

namespace IdDisentangle.Weights.Pickle;

/// <summary>The opcodes of Python's pickle protocols 0-5, with the names pickletools.py gives them.</summary>
internal enum PickleOpcode : byte
{
    // Framing and control.
    Proto = 0x80,
    Frame = 0x95,
    Stop = (byte)'.',
    Mark = (byte)'(',
    Pop = (byte)'0',
    PopMark = (byte)'1',
    Dup = (byte)'2',

    // Scalars.
    None = (byte)'N',
    NewTrue = 0x88,
    NewFalse = 0x89,
    Int = (byte)'I',
    BinInt = (byte)'J',
    BinInt1 = (byte)'K',
    BinInt2 = (byte)'M',
    Long = (byte)'L',
    Long1 = 0x8a,
    Long4 = 0x8b,
    Float = (byte)'F',
    BinFloat = (byte)'G',
    String = (byte)'S',
    BinString = (byte)'T',
    ShortBinString = (byte)'U',
    Unicode = (byte)'V',
    BinUnicode = (byte)'X',
    ShortBinUnicode = 0x8c,
    BinUnicode8 = 0x8d,
    BinBytes = (byte)'B',
    ShortBinBytes = (byte)'C',
    BinBytes8 = 0x8e,
    ByteArray8 = 0x96,

    // Containers.
    EmptyTuple = (byte)')',
    Tuple = (byte)'t',
    Tuple1 = 0x85,
    Tuple2 = 0x86,
    Tuple3 = 0x87,
    EmptyList = (byte)']',
    List = (byte)'l',
    Append = (byte)'a',
    Appends = (byte)'e',
    EmptyDict = (byte)'}',
    Dict = (byte)'d',
    SetItem = (byte)'s',
    SetItems = (byte)'u',
    EmptySet = 0x8f,
    AddItems = 0x90,
    FrozenSet = 0x91,

    // The memo.
    Get = (byte)'g',
    BinGet = (byte)'h',
    LongBinGet = (byte)'j',
    Put = (byte)'p',
    BinPut = (byte)'q',
    LongBinPut = (byte)'r',
    Memoize = 0x94,

    // Objects: globals, calls, state, persistent ids.
    Global = (byte)'c',
    StackGlobal = 0x93,
    Reduce = (byte)'R',
    NewObj = 0x81,
    NewObjEx = 0x92,
    Build = (byte)'b',
    PersId = (byte)'P',
    BinPersId = (byte)'Q',

    // Refused: old-style instantiation and the extension registry.
    Inst = (byte)'i',
    Obj = (byte)'o',
    Ext1 = 0x82,
    Ext2 = 0x83,
    Ext4 = 0x84,
}

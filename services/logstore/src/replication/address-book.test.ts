import { AddressBook, addressOfMemberContext, memberContext } from "./address-book";

describe("AddressBook", () => {
  it("starts from --peers, and a later source wins", () => {
    const book = new AddressBook([
      { id: 1, address: "a:1" },
      { id: 2, address: "b:2" },
    ]);
    book.set(2, "b2:2");
    book.set(4, "d:4");
    expect(book.peersOf([4, 2, 1])).toEqual([
      { id: 1, address: "a:1" },
      { id: 2, address: "b2:2" },
      { id: 4, address: "d:4" },
    ]);
    expect(book.addressOf(3)).toBeUndefined();
    expect(book.peersOf([3])).toEqual([{ id: 3, address: "" }]);
  });

  it("a single voter's empty address reads as unknown", () => {
    expect(new AddressBook([{ id: 1, address: "" }]).addressOf(1)).toBeUndefined();
  });
});

describe("member context (an add-learner change's address)", () => {
  it("round-trips an address", () => {
    expect(addressOfMemberContext(memberContext("127.0.0.1:7004"))).toBe("127.0.0.1:7004");
  });

  it("reads nothing dialable as null", () => {
    expect(addressOfMemberContext(new Uint8Array(0))).toBeNull();
    expect(addressOfMemberContext(memberContext("no port"))).toBeNull();
  });
});
